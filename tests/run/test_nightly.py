"""Nightly runs: incremental, reconciled with the shop, safe to run unattended.

moto's S3 server and the sandbox shop over loopback, as in test_submit.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from bulkimg.config import Settings
from bulkimg.demo.run import LocalS3
from bulkimg.demo.samples import image_bytes
from bulkimg.formats.state import StateStore
from bulkimg.run.lock import RunLockedError
from bulkimg.run.nightly import NightlyRun, run_nightly
from bulkimg.sandbox import SandboxShop
from bulkimg.shopify.client import client_from_settings
from tests.helpers.faultbuild import assert_no_secrets
from tests.helpers.files import read_jsonl
from tests.helpers.fixtures import ImageUrl
from tests.helpers.shop import PRODUCT, graphql, mutation_operations, reorders_done, sent_lines

KEY_2A = "sorted-media/11/02/19/1102192-2a-201.png"
# The tests read products back often; cost-based throttling is tested in test_submit.py.
pytestmark = pytest.mark.parametrize(
    "shop", [{"throttle_bucket_size": 1e6, "throttle_restore_rate": 1e6}], indirect=True
)


@pytest.fixture(autouse=True)
def _no_secret_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each night: no canary credential in outputs, logs or the state file."""
    settings = request.getfixturevalue("settings") if "settings" in request.fixturenames else None
    yield
    if settings is not None:
        assert_no_secrets(settings)


def night(settings: Settings) -> NightlyRun:
    with client_from_settings(settings) as client:
        return run_nightly(settings, client)


def media_of(url: str, handle: str = "lgd-101792") -> list[dict[str, Any]]:
    product = graphql(url, PRODUCT, {"handle": handle})["productByIdentifier"]
    return product["media"]["nodes"]  # type: ignore[no-any-return]


def all_media(url: str, settings: Settings) -> dict[str, list[str]]:
    handles = [p["handle"] for p in read_jsonl(settings.output_dir / "plan.jsonl")]
    return {h: sorted(m["id"] for m in media_of(url, h)) for h in handles}


def lines(settings: Settings) -> list[dict[str, Any]]:
    return sent_lines(settings.output_dir)


def product_id(url: str, handle: str = "lgd-101792") -> str:
    return str(graphql(url, PRODUCT, {"handle": handle})["productByIdentifier"]["id"])


def uploads(line: dict[str, Any]) -> list[str]:
    """The file names a line uploads: a created product's (bulkimg's names) or the S3 files'
    names of images appended to one that exists."""
    if "media" in line:
        return [urlsplit(m["originalSource"]).path.rsplit("/", 1)[-1] for m in line["media"]]
    files = line.get("input", {}).get("files", [])
    return [f["filename"] for f in files if "originalSource" in f]


@pytest.fixture
def first_night(settings: Settings) -> NightlyRun:
    settings.state_file.unlink(missing_ok=True)
    result = night(settings)
    assert result.exit_code == 0, read_jsonl(settings.output_dir / "failures.jsonl")
    assert result.reconciled is not None  # no state file yet: rebuilt from the (empty) shop
    return result


def test_a_night_with_no_change_sends_nothing_and_reads_no_image(
    settings: Settings, first_night: NightlyRun, shop_url: str
) -> None:
    operations = len(mutation_operations(shop_url))
    second = night(settings)
    assert second.exit_code == 0
    assert second.build is not None
    report = second.build.report
    assert "GetObject" not in report.s3_requests
    assert report.groups_unchanged == report.groups
    assert report.groups_written == 0 and lines(settings) == []
    assert [op for op in second.submit.operations if op.operation_id] == []
    assert len(mutation_operations(shop_url)) == operations
    assert second.report.bulk_operations == 0
    outcome = second.report.outcome
    assert outcome["failed"] == 0 and outcome["done"] + outcome["missing"] == report.groups


def test_adding_one_image_to_s3_changes_exactly_one_line(
    settings: Settings,
    first_night: NightlyRun,
    s3_server: LocalS3,
    bucket: str,
    shop_url: str,
    shop: SandboxShop,
) -> None:
    before = media_of(shop_url)
    s3_server.client().put_object(
        Bucket=bucket,
        Key="sorted-media/11/02/19/1102192-3a-999.jpg",
        Body=image_bytes("jpg", 500, 500, "3a"),
    )
    second = night(settings)
    assert second.exit_code == 0
    (line,) = lines(settings)  # appended: no list of the images it keeps, nothing deleted
    assert set(line) == {"product", "media"} and line["product"] == {"id": product_id(shop_url)}
    assert uploads(line) == ["1102192-3a-999.jpg"]
    reorders_done(shop)
    after = media_of(shop_url)
    assert [m["alt"] for m in after] == [
        "1102192 - Image 1",
        "1102192 - Image 2",
        "1102192 - Image 3",
        "1102192 - Image 10",
    ]
    assert {m["id"] for m in before} < {m["id"] for m in after}


def _etag(s3_server: LocalS3, bucket: str) -> str:
    head = s3_server.client().head_object(
        Bucket=bucket, Key="sorted-media/11/02/19/1102192-3a-999.jpg"
    )
    return str(head["ETag"]).strip('"')


def test_replaced_s3_object_replaces_its_image(
    settings: Settings,
    first_night: NightlyRun,
    s3_server: LocalS3,
    bucket: str,
    shop_url: str,
    shop: SandboxShop,
) -> None:
    before = media_of(shop_url)
    s3_server.client().put_object(
        Bucket=bucket, Key=KEY_2A, Body=image_bytes("png", 720, 720, "2a v2")
    )
    second = night(settings)
    assert second.exit_code == 0
    append, delete = sorted(lines(settings), key=lambda line: "fileIds" in line)
    assert uploads(append) == ["1102192-2a-201.png"]
    assert delete == {"fileIds": [before[1]["id"]]}  # bulkimg's own out-of-date copy
    reorders_done(shop)
    after = media_of(shop_url)
    assert len(after) == 3
    assert (after[0]["id"], after[2]["id"]) == (before[0]["id"], before[2]["id"])
    assert after[1]["id"] != before[1]["id"]
    assert third_night_is_quiet(settings)


def third_night_is_quiet(settings: Settings) -> bool:
    third = night(settings)
    return (
        third.exit_code == 0 and third.build is not None and third.build.report.groups_written == 0
    )


def test_lost_state_file_is_rebuilt_without_duplicating_any_image(
    settings: Settings, first_night: NightlyRun, shop_url: str
) -> None:
    before = all_media(shop_url, settings)
    settings.state_file.unlink()
    second = night(settings)
    assert second.exit_code == 0
    assert second.reconciled is not None and second.reconciled["products"] == len(before)
    assert all(uploads(line) == [] for line in lines(settings))  # reordering at most
    assert all_media(shop_url, settings) == before
    assert third_night_is_quiet(settings)


def add_manual_image(shop_url: str, image_url: ImageUrl) -> str:
    """Add an image to lgd-101792 as a merchant would (not a bulkimg file name)."""
    existing = [{"id": m["id"]} for m in media_of(shop_url)]
    manual = {"originalSource": image_url("lifestyle.jpg", size=(400, 400)), "alt": "On a hand"}
    added = graphql(
        shop_url,
        "mutation($input: ProductSetInput!, $identifier: ProductSetIdentifiers) {"
        " productSet(input: $input, identifier: $identifier) { userErrors { message } } }",
        {"identifier": {"handle": "lgd-101792"}, "input": {"files": [*existing, manual]}},
    )
    assert added["productSet"]["userErrors"] == []
    return str(media_of(shop_url)[-1]["id"])


def test_an_image_added_by_hand_survives_a_night_that_changes_the_product(
    settings: Settings,
    first_night: NightlyRun,
    s3_server: LocalS3,
    bucket: str,
    shop_url: str,
    image_url: ImageUrl,
) -> None:
    manual_id = add_manual_image(shop_url, image_url)
    # Change the group so it gets a line: the line must keep the image it did not upload.
    s3_server.client().put_object(
        Bucket=bucket, Key=KEY_2A, Body=image_bytes("png", 710, 710, "2a v3")
    )
    second = night(settings)
    assert second.exit_code == 0
    sent = lines(settings)
    on_shop = [m["id"] for m in media_of(shop_url)]
    assert all(manual_id not in line.get("fileIds", []) for line in sent)
    assert manual_id in on_shop and len(on_shop) == 4
    assert second.submit.counts["images_kept_foreign"] == 1


def test_two_runs_never_overlap_on_one_shop(settings: Settings) -> None:
    from tests.helpers.lock import lock_held

    with lock_held(settings.output_dir, "run"), pytest.raises(RunLockedError, match="held by pid"):
        night(settings)
    assert not settings.state_file.exists()  # refused before anything was done


def test_state_file_records_each_image_and_variant(
    settings: Settings, first_night: NightlyRun
) -> None:
    with StateStore(settings.state_file) as state:
        product = state.product("lgd-101792")
    assert product is not None
    assert [(m.image_sku, m.variation, m.status) for m in product.media] == [
        ("1102192", 1, "READY"),
        ("1102192", 2, "READY"),
        ("1102192", 10, "READY"),
    ]
    assert all(m.s3_key and m.etag for m in product.media)
    first_media = product.media[0].media_id
    with_image = [sku for sku, (_, media) in product.variants.items() if media]
    assert len(with_image) == 2 and all(
        product.variants[sku][1] == first_media for sku in with_image
    )


def test_state_file_of_another_shop_is_refused(settings: Settings, tmp_path: Path) -> None:
    from bulkimg.errors import ConfigError

    StateStore(settings.state_file, "https://other.myshopify.com").close()
    with pytest.raises(ConfigError, match="records the shop"):
        night(settings)


def test_a_nightly_run_archives_itself(settings: Settings, first_night: NightlyRun) -> None:
    (folder,) = (settings.output_dir / "runs").iterdir()
    assert {"plan.jsonl", "manifest.jsonl", "report.json", "run.json"} <= {
        p.name for p in folder.iterdir()
    }
    assert (folder / "results").is_dir()


def test_run_command_twice_second_night_sends_nothing(
    settings: Settings, s3_server: LocalS3, bucket: str, shop_url: str, tmp_path: Path
) -> None:
    import json
    import os
    import subprocess
    import sys

    from tests.helpers.env import CANARY_KEY_ID, CANARY_SECRET, SHOP_TOKEN

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BULKIMG_"))}
    env.update(
        AWS_ENDPOINT_URL_S3=s3_server.endpoint_url,
        AWS_S3_BUCKET=bucket,
        AWS_ACCESS_KEY_ID=CANARY_KEY_ID,
        AWS_SECRET_ACCESS_KEY=CANARY_SECRET,
        BULKIMG_CATALOG=str(settings.catalog),
        SHOPIFY_SHOP=shop_url,
        SHOPIFY_ACCESS_TOKEN=SHOP_TOKEN,
        BULKIMG_POLL_INTERVAL="0.05",
        BULKIMG_POLL_MAX_INTERVAL="0.2",
    )
    cwd = tmp_path / "cron"
    cwd.mkdir()
    for expected_sent in (28, 0):
        result = subprocess.run(
            [sys.executable, "-m", "bulkimg", "--log-json", "run", "--all"],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout == ""  # --log-json: only JSON lines, all on stderr
        events = [json.loads(line) for line in result.stderr.splitlines()]
        assert events and all("event" in e for e in events)
        report = json.loads((cwd / "output" / "report.json").read_text())
        assert report["groups_sent"] == expected_sent
        outcome = events[-1]
        assert (outcome["event"], outcome["command"], outcome["exit_code"]) == ("outcome", "run", 0)
        assert outcome["report"]["groups_sent"] == expected_sent
    assert report["bulk_operations"] == 0 and report["s3_requests"].get("GetObject") is None
    assert "output/report.json" in outcome["files"]
    in_cron = {"output_dir": cwd / "output", "logs_dir": cwd / "logs"}
    assert_no_secrets(settings.model_copy(update=in_cron), result.stdout + result.stderr)
