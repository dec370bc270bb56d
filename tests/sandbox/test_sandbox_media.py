"""Media from URLs: the sandbox really downloads originalSource (presigned URLs from moto's S3
server) and ends each media READY with its size, or FAILED with Shopify's error code."""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bulkimg.demo.samples import image_bytes
from bulkimg.shopify.documents import load_document
from tests.helpers.fixtures import ImageUrl, MakeSandbox
from tests.helpers.sandbox import SandboxSession, product_line, wait_for

PRODUCT_SET = load_document("product_set")
MEDIA = """
query($handle: String!) {
  productByIdentifier(identifier: {handle: $handle}) {
    media(first: 20) {
      nodes {
        id alt status
        ... on MediaImage { mimeType image { url width height } mediaErrors { code details } }
      }
    }
  }
}
"""


def _media(session: SandboxSession, handle: str) -> list[Any]:
    product = session.data(MEDIA, {"handle": handle})["productByIdentifier"]
    nodes: list[Any] = product["media"]["nodes"]
    return nodes


def _create(session: SandboxSession, handle: str, sources: dict[str, str]) -> None:
    files = [
        {"originalSource": url, "alt": alt, "contentType": "IMAGE"} for alt, url in sources.items()
    ]
    payload = session.data(PRODUCT_SET, product_line(handle, files=files))["productSet"]
    assert payload["userErrors"] == []


def test_image_goes_uploaded_processing_ready_with_its_size_and_name(
    make_sandbox: MakeSandbox, image_url: ImageUrl
) -> None:
    session: SandboxSession = make_sandbox(media_processing_delay=1.0)
    _create(session, "life", {"front": image_url("827749-1a-123.jpg", size=(64, 48))})
    (uploaded,) = _media(session, "life")
    assert (uploaded["status"], uploaded["image"]) == ("UPLOADED", None)
    wait_for(lambda: _media(session, "life")[0], lambda m: m["status"] == "PROCESSING")
    (ready,) = wait_for(lambda: _media(session, "life"), lambda ms: ms[0]["status"] == "READY")
    assert (ready["image"]["width"], ready["image"]["height"]) == (64, 48)
    assert ready["mimeType"] == "image/jpeg"
    assert ready["mediaErrors"] == []
    url = urlsplit(ready["image"]["url"])
    assert url.path.endswith("/827749-1a-123.jpg") and "v" in parse_qs(url.query)


def test_failed_media_carry_shopifys_error_codes(
    make_sandbox: MakeSandbox, image_url: ImageUrl
) -> None:
    session: SandboxSession = make_sandbox(media_max_megapixels=0.002, media_max_bytes=40_000)
    jpeg = image_bytes("jpg", 40, 30)
    sources = {
        "fine": image_url("fine.jpg", jpeg),
        "missing": image_url("missing.jpg").replace("/missing.jpg", "/nope.jpg"),
        "text": image_url("notes.jpg", b"this is not an image, just text\n" * 4),
        "pixels": image_url("big.png", image_bytes("png", 64, 48)),
        "bytes": image_url("noise.png", image_bytes("png", 40, 30) + bytes(50_000)),
        "truncated": image_url("cut.jpg", jpeg[:30]),
    }
    _create(session, "failures", sources)
    media = wait_for(
        lambda: _media(session, "failures"),
        lambda ms: all(m["status"] in ("READY", "FAILED") for m in ms),
    )
    codes = {m["alt"]: [e["code"] for e in m["mediaErrors"]] for m in media}
    assert codes == {
        "fine": [],
        "missing": ["IMAGE_DOWNLOAD_FAILURE"],
        "text": ["UNSUPPORTED_IMAGE_FILE_TYPE"],
        "pixels": ["INVALID_IMAGE_RESOLUTION"],
        "bytes": ["INVALID_IMAGE_FILE_SIZE"],
        "truncated": ["IMAGE_PROCESSING_FAILURE"],
    }
    assert all(m["image"] is None for m in media if m["status"] == "FAILED")


def test_presigned_signatures_never_reach_the_logs(
    sandbox: SandboxSession, image_url: ImageUrl, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = image_url("gone.jpg").replace("/gone.jpg", "/absent.jpg")
    query = parse_qs(urlsplit(url).query)
    (name,) = {"Signature", "X-Amz-Signature"} & set(query)  # SigV2 or SigV4 presigning
    signature = query[name][0]
    _create(sandbox, "logs", {"gone": url})
    wait_for(lambda: _media(sandbox, "logs")[0], lambda m: m["status"] == "FAILED")
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bulkimg"))
    assert "absent.jpg" in ours
    assert signature not in ours
    assert f"{name}=REDACTED" in ours


def test_unprocessed_media_are_processed_after_a_restart(
    tmp_path: Any, make_sandbox: MakeSandbox, image_url: ImageUrl
) -> None:
    state = tmp_path / "restart.sqlite"
    first: SandboxSession = make_sandbox(state, media_processing_delay=30)
    _create(first, "later", {"front": image_url("later.jpg")})
    first.shop.close()
    second: SandboxSession = make_sandbox(state)
    (media,) = wait_for(lambda: _media(second, "later"), lambda ms: ms[0]["status"] == "READY")
    assert media["image"]["width"] == 64


def test_a_presigned_url_expired_by_fetch_time_fails_the_media(
    make_sandbox: MakeSandbox, image_url: ImageUrl
) -> None:
    # Fetched about 2 s after the call (half the processing delay): a 1 s URL has expired.
    session: SandboxSession = make_sandbox(media_processing_delay=4.0)
    sources = {"short": image_url("short.jpg", expires_in=1), "long": image_url("long.jpg")}
    _create(session, "expiring", sources)
    media = wait_for(
        lambda: _media(session, "expiring"),
        lambda ms: all(m["status"] in ("READY", "FAILED") for m in ms),
        timeout=15,
    )
    codes = {m["alt"]: [e["code"] for e in m["mediaErrors"]] for m in media}
    assert codes == {"short": ["IMAGE_DOWNLOAD_FAILURE"], "long": []}
    short = next(m for m in media if m["alt"] == "short")
    assert "expired" in short["mediaErrors"][0]["details"]


def test_a_url_signed_with_expired_session_credentials_fails_whatever_its_lifetime(
    make_sandbox: MakeSandbox, image_url: ImageUrl
) -> None:
    session: SandboxSession = make_sandbox(credentials_expire_at=time.time() - 1)
    _create(session, "stale-creds", {"front": image_url("front.jpg", expires_in=3600)})
    (media,) = wait_for(
        lambda: _media(session, "stale-creds"), lambda ms: ms[0]["status"] == "FAILED"
    )
    assert [e["code"] for e in media["mediaErrors"]] == ["IMAGE_DOWNLOAD_FAILURE"]
    assert "credentials" in media["mediaErrors"][0]["details"]


def test_a_source_answering_403_or_404_fails_the_media(
    sandbox: SandboxSession, image_url: ImageUrl
) -> None:
    forbidden = f"{sandbox.url}/sandbox-storage/results/1/x.jsonl?Expires=9999999999&Signature=bad"
    missing = image_url("here.jpg").replace("/here.jpg", "/not-here.jpg")
    _create(sandbox, "refused", {"forbidden": forbidden, "missing": missing})
    media = wait_for(
        lambda: _media(sandbox, "refused"), lambda ms: all(m["status"] == "FAILED" for m in ms)
    )
    details = {
        m["alt"]: (m["mediaErrors"][0]["code"], m["mediaErrors"][0]["details"]) for m in media
    }
    assert details == {
        "forbidden": ("IMAGE_DOWNLOAD_FAILURE", "HTTP 403"),
        "missing": ("IMAGE_DOWNLOAD_FAILURE", "HTTP 404"),
    }
