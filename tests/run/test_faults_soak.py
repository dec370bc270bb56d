"""Fault matrix, Soak: one big bulk run with a few percent of faults, every line accounted for.

The sandbox runs in-process (httpx.WSGITransport: no socket); the plan and productSet lines are
generated (no catalog, no build), 2 % of the groups with one image in moto's S3 server.
"""

from __future__ import annotations

import os
import random
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from mypy_boto3_s3 import S3Client

from bulkimg.config import Settings
from bulkimg.demo.run import LocalS3
from bulkimg.demo.samples import image_bytes
from bulkimg.formats.lines import dump_line
from bulkimg.formats.plan import PlanMedia, PlanRecord, PlanVariant
from bulkimg.plan.productset import LineRules, productset_variables
from bulkimg.run.retry import run_retry
from bulkimg.run.submit import Submission, SubmitOutcome
from bulkimg.s3.client import make_s3_client
from bulkimg.sandbox import FaultRule, SandboxConfig, SandboxShop
from bulkimg.shopify.client import client_from_settings
from tests.helpers.env import SHOP_TOKEN
from tests.helpers.faultbuild import assert_no_secrets
from tests.helpers.files import read_jsonl
from tests.helpers.fixtures import MakeSettings

# 4,000 in the suite: the sandbox runs every line, and every product of each export, through
# graphql-core (~1.3 ms of CPU per productSet line, about as much per exported product), so
# 20,000 lines cost over a minute of CPU; 4,000 cost ~25 s with bulkimg's side included.
# BULKIMG_TEST_SOAK_LINES=20000 runs the long soak (docs/reliability.md).
SUITE_LINES = 4_000
LINES = int(os.environ.get("BULKIMG_TEST_SOAK_LINES", SUITE_LINES))
IMAGE_EVERY = 50  # every 50th group has one image: half of them fail on the first run
SKIPPED = 0.02  # share of lines the bulk operation never runs
POLL_5XX = 0.05  # share of bulkOperation polls answered 503


def write_run(out: Path, s3: S3Client, bucket: str) -> tuple[set[str], set[str]]:
    """plan.jsonl and productset.jsonl for LINES groups; (groups with an image, bad images)."""
    out.mkdir(parents=True, exist_ok=True)
    body = image_bytes("jpg", 32, 24)
    with_image: set[str] = set()
    bad: set[str] = set()
    rules = LineRules()

    def presign(key: str) -> str:
        params = {"Bucket": bucket, "Key": key}
        url: str = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=3600)
        return url

    with (out / "plan.jsonl").open("wb") as plan, (out / "productset.jsonl").open("wb") as lines:
        for n in range(LINES):
            group, sku = f"SOAK-{n:05d}", f"9{n:06d}"
            media, key = [], None
            if n % IMAGE_EVERY == 0:
                kind = "bad" if n % (2 * IMAGE_EVERY) else "ok"
                key = f"sorted-media/soak/{sku}-1a-{kind}{n}.jpg"
                s3.put_object(Bucket=bucket, Key=key, Body=body)
                media = [PlanMedia(position=1, s3_key=key, image_sku=sku, variation=1, width=32,
                                   height=24, etag=f"e{n}", alt=f"{sku} - Image 1")]  # fmt: skip
                with_image.add(group)
                if kind == "bad":
                    bad.add(group)
            record = PlanRecord(
                group_id=group, handle=group.lower(), title=f"Soak {n}", status="planned",
                file="productset.jsonl", line=n + 1, media=media,
                variants=[PlanVariant(sku=sku, image_sku=sku, image_s3_key=key)],
            )  # fmt: skip
            plan.write(record.dump())
            lines.write(dump_line(productset_variables(record.to_group_plan(), presign, rules)))
    return with_image, bad


@pytest.mark.fault_matrix(
    area="Soak",
    fault=f"{SUITE_LINES:,} productSet lines (BULKIMG_TEST_SOAK_LINES=20000 for the long soak):"
    f" {SKIPPED:.0%} never run, {POLL_5XX:.0%} of polls 503, a result download 502, 1 % of"
    " the images fail",
    outcome="done + failed == sent, each failed group retryable; one retry converges to 0"
    " failures with no duplicated image",
)
def test_soak_every_line_is_accounted_for_and_retry_converges(
    tmp_path: Path, make_settings: MakeSettings, s3_server: LocalS3
) -> None:
    bucket = f"soak-{uuid.uuid4().hex[:8]}"
    s3_server.client().create_bucket(Bucket=bucket)
    settings: Settings = make_settings(
        aws_s3_bucket=bucket,
        aws_endpoint_url_s3=s3_server.endpoint_url,
        shopify_shop="http://sandbox.test",
        shopify_access_token=SHOP_TOKEN,
        poll_interval=0.05,
        poll_max_interval=0.2,
        media_wait_seconds=30,
    )
    s3 = make_s3_client(settings)
    with_image, bad = write_run(settings.output_dir, s3, bucket)
    skipped = set(random.Random(7).sample(range(LINES), int(LINES * SKIPPED)))
    bad_run = bad - _skipped(skipped)  # images that fail; the others never reach the shop
    config = SandboxConfig(
        access_token=SHOP_TOKEN, media_processing_delay=0, shuffle_seed=3,
        throttle_restore_rate=1e6,
    )  # fmt: skip
    with SandboxShop(tmp_path / "shop.sqlite", config) as shop:
        for rule in (
            FaultRule("bulk_mutation", skip_lines=tuple(sorted(skipped)), count=1),
            FaultRule("graphql", status=503, operation_name="BulkOperation", probability=POLL_5XX),
            FaultRule("result_download", status=502, count=1),
            FaultRule("media_fetch", status=404, url_contains="a-bad", count=len(bad_run)),
        ):
            shop.faults.add(rule)
        http = httpx.Client(transport=httpx.WSGITransport(app=shop.wsgi_app), timeout=30)
        with client_from_settings(settings, http=http) as client:
            first = _submit(settings, client)
            failed = {f["group_id"] for f in read_jsonl(settings.output_dir / "failures.jsonl")}
            counts = first.counts
            assert counts["lines_submitted"] == LINES
            assert counts["lines_done"] + counts["lines_failed"] == LINES
            assert counts["lines_failed"] == len(skipped)
            assert counts["done"] + counts["missing"] + counts["failed"] == LINES
            assert failed == _skipped(skipped) | bad_run
            _assert_manifest(settings, failed)

            _, second = run_retry(settings, client, settings.output_dir / "failures.jsonl", s3)
            assert second is not None and second.exit_code == 0
            assert read_jsonl(settings.output_dir / "failures.jsonl") == []
            _assert_manifest(settings, set())
        media = Counter(m.product_id for m in _all_media(shop))
        assert len(media) == len(with_image) and set(media.values()) == {1}
        assert shop.faults.seen("media_fetch") == len(with_image) + len(bad_run)
    assert_no_secrets(settings)


def _submit(settings: Settings, client: Any) -> SubmitOutcome:
    submission = Submission(settings, client)
    state = submission.start([settings.output_dir / "productset.jsonl"])
    return submission.run(state, wait=True)


def _skipped(lines: set[int]) -> set[str]:
    return {f"SOAK-{n:05d}" for n in lines}


def _assert_manifest(settings: Settings, failed: set[str]) -> None:
    manifest = read_jsonl(settings.output_dir / "manifest.jsonl")
    assert len(manifest) == LINES == len({e["group_id"] for e in manifest})
    assert {e["group_id"] for e in manifest if e["status"] == "failed"} == failed
    for failure in read_jsonl(settings.output_dir / "failures.jsonl"):
        assert failure["retryable"] and failure["errors"][0]["code"], failure


def _all_media(shop: SandboxShop) -> list[Any]:
    store = shop.services.store
    return [m for p in store.products() for m in store.media_of_product(p.id)]
