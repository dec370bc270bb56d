"""submit --wait and retry end to end: moto's S3 server and the sandbox shop over loopback HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bulkimg.config import Settings
from bulkimg.demo.run import LocalS3
from bulkimg.demo.samples import SampleData
from bulkimg.formats.run import Phase, RunStore, Step
from bulkimg.run.build import run_build
from bulkimg.sandbox import FaultRule, SandboxConfig, SandboxShop, serve
from tests.helpers.env import CANARY_KEY_ID, CANARY_SECRET, CANARY_TOKEN, SHOP_TOKEN, secrets_in
from tests.helpers.files import read_jsonl
from tests.helpers.shop import PRODUCT, graphql, mutation_operations, retry, submit


def leaks(settings: Settings) -> list[str]:
    """Canary secrets in outputs and logs (productSet lines hold presigned URLs by design)."""
    out = settings.output_dir
    files = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith("productset")]
    return secrets_in([*files, settings.logs_dir])


@pytest.fixture(autouse=True)
def _no_secret_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each run: no canary credential in outputs, logs or the state file."""
    settings = request.getfixturevalue("settings") if "settings" in request.fixturenames else None
    yield
    if settings is not None:
        assert leaks(settings) == []


def duplicated_images(shop: SandboxShop) -> list[str]:
    """Products of the shop that hold one image (alt text) twice."""
    store = shop.services.store
    alts = {p.handle: [m.alt for m in store.media_of_product(p.id)] for p in store.products()}
    return [handle for handle, names in alts.items() if len(names) != len(set(names))]


def test_clean_run_puts_every_image_on_its_product_and_variant(
    settings: Settings, shop_url: str
) -> None:
    outcome = submit(settings)
    assert outcome.exit_code == 0, read_jsonl(settings.output_dir / "failures.jsonl")
    manifest = {e["group_id"]: e for e in read_jsonl(settings.output_dir / "manifest.jsonl")}
    plans = {p["group_id"]: p for p in read_jsonl(settings.output_dir / "plan.jsonl")}
    assert set(manifest) == set(plans)
    assert {e["status"] for e in manifest.values()} <= {"done", "missing"}
    assert read_jsonl(settings.output_dir / "failures.jsonl") == []
    counts = outcome.counts
    assert counts["lines_submitted"] == counts["lines_done"] == len(plans)
    assert counts["done"] + counts["missing"] == len(plans)

    entry, plan = manifest["LGD-101792"], plans["LGD-101792"]
    assert entry["status"] == "missing"  # one variant has no Image_SKU
    product = graphql(shop_url, PRODUCT, {"handle": "lgd-101792"})["productByIdentifier"]
    assert product["id"] == entry["product_id"]
    assert [m["alt"] for m in product["media"]["nodes"]] == [m["alt"] for m in plan["media"]]
    assert {m["status"] for m in product["media"]["nodes"]} == {"READY"}
    assert [m["s3_key"] for m in entry["media"]] == [m["s3_key"] for m in plan["media"]]
    primary = product["media"]["nodes"][0]["id"]
    attached = {v["sku"]: v["media"]["nodes"] for v in product["variants"]["nodes"]}
    with_image = [v for v in plan["variants"] if v["image_s3_key"]]
    assert with_image and all(attached[v["sku"]] == [{"id": primary}] for v in with_image)
    assert [v["media_id"] for v in entry["variants"]] == [primary, primary, None]
    assert len(mutation_operations(shop_url)) == 2  # productSet, then variant images


@pytest.mark.fault_matrix(
    area="Shopify",
    fault="media fails processing (image download fails: IMAGE_DOWNLOAD_FAILURE)",
    outcome="group failed MEDIA_FAILED, retryable, in the upload-failure log; retry replaces"
    " the image (3 media, not 4)",
)
def test_failed_image_download_is_logged_then_fixed_by_retry(
    settings: Settings, shop: SandboxShop, shop_url: str
) -> None:
    shop.faults.add(FaultRule("media_fetch", status=404, url_contains="1102192-2a"))
    first = submit(settings)
    assert first.exit_code == 1
    failures = read_jsonl(settings.output_dir / "failures.jsonl")
    assert [(f["group_id"], f["errors"][0]["code"], f["retryable"]) for f in failures] == [
        ("LGD-101792", "MEDIA_FAILED", True)
    ]
    manifest = {e["group_id"]: e for e in read_jsonl(settings.output_dir / "manifest.jsonl")}
    assert manifest["LGD-101792"]["status"] == "failed"
    assert [m["status"] for m in manifest["LGD-101792"]["media"]] == ["READY", "FAILED", "READY"]
    (log,) = settings.logs_dir.glob("image_upload_failures_*.log")
    assert "| Image: 1102192-2a-201.png |" in log.read_text()

    shop.faults.clear()
    second = retry(settings)
    assert second.exit_code == 0
    assert read_jsonl(settings.output_dir / "failures.jsonl") == []
    manifest = {e["group_id"]: e for e in read_jsonl(settings.output_dir / "manifest.jsonl")}
    assert len(manifest) == len(read_jsonl(settings.output_dir / "plan.jsonl"))
    assert manifest["LGD-101792"]["status"] == "missing"
    assert {m["status"] for m in manifest["LGD-101792"]["media"]} == {"READY"}
    product = graphql(shop_url, PRODUCT, {"handle": "lgd-101792"})["productByIdentifier"]
    assert len(product["media"]["nodes"]) == 3  # replaced, not duplicated
    assert leaks(settings) == [] and duplicated_images(shop) == []


@pytest.mark.fault_matrix(
    area="Shopify",
    fault="bulk operation ends FAILED part way (partial result at partialDataUrl)",
    outcome="partial results kept; the other lines NOT_RUN, retryable, exit 3; retry completes",
)
def test_operation_failing_part_way_keeps_partial_results_and_the_rest_is_retryable(
    settings: Settings, shop: SandboxShop
) -> None:
    shop.faults.add(FaultRule("bulk_mutation", fail_after_lines=5, count=1))
    first = submit(settings)
    assert first.exit_code == 3
    phase1 = RunStore(settings.output_dir).load().ops(Phase.PRODUCT_SET)[0]
    assert phase1.status == "FAILED" and phase1.partial_file
    failures = read_jsonl(settings.output_dir / "failures.jsonl")
    not_run = [f for f in failures if f["errors"][0]["code"] == "NOT_RUN"]
    assert len(not_run) == first.counts["lines_submitted"] - 5 == first.counts["lines_failed"]
    assert all(f["retryable"] and f["phase"] == "product_set" for f in not_run)
    assert first.counts["lines_done"] == 5
    second = retry(settings)
    assert second.exit_code == 0
    statuses = {e["status"] for e in read_jsonl(settings.output_dir / "manifest.jsonl")}
    assert statuses <= {"done", "missing"}
    assert leaks(settings) == [] and duplicated_images(shop) == []


@pytest.mark.fault_matrix(
    area="Shopify",
    fault="429 (Retry-After), THROTTLED and 5xx on GraphQL calls, bulkOperation polls, the"
    " staged upload POST and the result download",
    outcome="retried (Retry-After / throttle status); run completes, 0 failures",
)
@pytest.mark.parametrize(
    "shop", [{"throttle_bucket_size": 20, "throttle_restore_rate": 5}], indirect=True
)
def test_throttling_and_5xx_on_every_route_are_survived(
    settings: Settings, shop: SandboxShop
) -> None:
    for rule in (
        FaultRule("graphql", status=503, count=2, operation_name="Shop"),  # the first call
        FaultRule("graphql", status=503, count=1, operation_name="BulkOperationRunQuery"),
        FaultRule("graphql", status=429, retry_after=0, count=1),
        FaultRule("graphql", status=502, count=1, operation_name="BulkOperation"),
        FaultRule("staged_upload", status=500, count=1),
        FaultRule("result_download", status=502, count=2),
    ):
        shop.faults.add(rule)
    retries: Counter[str] = Counter()
    # The run request's 503 leaves it uncertain: looked up, then sent again after this wait.
    outcome = submit(settings.model_copy(update={"submit_recovery_seconds": 4}), retries)
    assert outcome.exit_code == 0, read_jsonl(settings.output_dir / "failures.jsonl")
    assert shop.faults.rules() == []  # every injected fault was met
    assert retries["ShopifyThrottledError"] >= 2  # the 429 and at least one THROTTLED
    # The shop export's run request is never blindly resent: its 503 is resolved by looking the
    # operation up; every other 5xx is retried (the first call, the shop's name, included).
    assert retries["ShopifyServerError"] >= 6
    assert shop.faults.seen("graphql", operation_name="BulkOperations") >= 1
    assert leaks(settings) == []


@pytest.mark.fault_matrix(
    area="Shopify",
    fault="bulkOperationRunMutation times out after the shop started the operation",
    outcome="the operation is found among the app's operations, not submitted again",
)
def test_lost_answer_to_run_mutation_is_found_not_submitted_twice(
    settings: Settings, shop: SandboxShop, shop_url: str
) -> None:
    # The answer arrives after the client gave up: the operation exists, the client does not
    # know its id. Resuming must find it, not start a second one.
    shop.faults.add(
        FaultRule("graphql", delay=3.0, count=1, operation_name="BulkOperationRunMutation")
    )
    quick = settings.model_copy(update={"shopify_timeout": 1.0, "submit_recovery_seconds": 6})
    outcome = submit(quick)
    assert outcome.exit_code == 0
    assert len(mutation_operations(shop_url)) == 2
    assert leaks(settings) == [] and duplicated_images(shop) == []


@pytest.mark.fault_matrix(
    area="Secrets",
    fault="canary AWS and Shopify credentials in the settings",
    outcome="in no output, log or failure line; productSet lines hold no secret key or token",
)
def test_secrets_appear_in_no_output_or_log(settings: Settings) -> None:
    submit(settings)
    out = settings.output_dir
    files = [p for p in out.rglob("*") if p.is_file() and not p.name.startswith("productset")]
    files += list(settings.logs_dir.glob("*"))
    assert secrets_in(files) == []
    for file in [*files, *out.glob("productset*.jsonl")]:
        data = file.read_bytes()
        assert SHOP_TOKEN.encode() not in data, file
        assert CANARY_SECRET.encode() not in data, file
    for failure in read_jsonl(out / "failures.jsonl"):
        assert CANARY_TOKEN not in orjson.dumps(failure).decode()


def _bulkimg(cwd: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bulkimg", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.fault_matrix(
    area="Crash",
    fault="SIGKILL of submit --wait while polling the productSet operation",
    outcome="resumed from run.json; no second submission; every group in the manifest",
)
def test_killed_while_polling_resumes_without_a_second_submission(
    tmp_path: Path, s3_server: LocalS3, bucket: str, sample: SampleData
) -> None:
    config = SandboxConfig(
        access_token=SHOP_TOKEN, media_processing_delay=0.05, bulk_line_delay=0.15
    )
    with SandboxShop(tmp_path / "slow-shop.sqlite", config) as slow, serve(slow) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BULKIMG_"))}
        env.update(
            AWS_ENDPOINT_URL_S3=s3_server.endpoint_url,
            AWS_S3_BUCKET=bucket,
            AWS_ACCESS_KEY_ID=CANARY_KEY_ID,
            AWS_SECRET_ACCESS_KEY=CANARY_SECRET,
            BULKIMG_CATALOG=str(sample.write_csv(tmp_path / "nav_items.csv")),
            SHOPIFY_SHOP=url,
            SHOPIFY_ACCESS_TOKEN=SHOP_TOKEN,
            BULKIMG_POLL_INTERVAL="0.1",
            BULKIMG_POLL_MAX_INTERVAL="0.3",
        )
        assert _bulkimg(tmp_path, env, "build", "--all").wait(60) == 0
        first = _bulkimg(tmp_path, env, "submit", "--wait")
        store = RunStore(tmp_path / "output")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ops = store.load().ops(Phase.PRODUCT_SET) if store.exists() else []
            if ops and ops[0].step is Step.SUBMITTED:
                break
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert store.load().ops(Phase.PRODUCT_SET)[0].step is Step.SUBMITTED
        assert len(mutation_operations(url)) == 1

        second = _bulkimg(tmp_path, env, "submit", "--wait")
        out, err = second.communicate(timeout=120)
        assert second.returncode == 0, err
        assert len(mutation_operations(url)) == 2  # phase 1 once, then phase 2
        manifest = read_jsonl(tmp_path / "output" / "manifest.jsonl")
        assert len(manifest) == len(read_jsonl(tmp_path / "output" / "plan.jsonl"))
        assert SHOP_TOKEN not in out + err


def test_every_line_sent_validates_against_the_admin_schema(
    settings: Settings, admin_schemas: list[Any]
) -> None:
    from bulkimg.shopify.documents import load_document, validate_bulk_query, validate_operation

    submit(settings)
    state = RunStore(settings.output_dir).load()
    (phase2,) = state.ops(Phase.VARIANT_MEDIA)
    lines = read_jsonl(Path(phase2.input_file))
    assert lines and all(len(line["variantMedia"]) <= 100 for line in lines)
    for schema in admin_schemas:
        for line in lines:
            assert validate_operation(schema, load_document("variant_append_media"), line) == []
        for line in read_jsonl(settings.output_dir / "productset.jsonl"):
            assert validate_operation(schema, load_document("product_set"), line) == []
        assert validate_bulk_query(schema, load_document("export_products")) == []


@pytest.mark.fault_matrix(
    area="Shopify",
    fault="concurrency limit reached (LIMIT_REACHED: more files than the shop runs at once)",
    outcome="waits and submits later; each file once; every line done",
)
@pytest.mark.parametrize("shop", [{"bulk_concurrency_limit": 2}], indirect=True)
def test_several_files_run_within_the_shops_concurrency_limit(
    settings: Settings, shop_url: str
) -> None:
    split = settings.model_copy(update={"max_jsonl_bytes": 12_000, "bulk_concurrency": 5})
    build = run_build(split)
    files = build.report.productset_files
    assert len(files) >= 3
    # bulkimg allows 5 at once, the shop 2: the shop's LIMIT_REACHED makes it wait, not fail.
    outcome = submit(split)
    assert outcome.exit_code == 0, read_jsonl(split.output_dir / "failures.jsonl")
    assert outcome.counts["lines_submitted"] == outcome.counts["lines_done"] == 28
    phase1 = RunStore(split.output_dir).load().ops(Phase.PRODUCT_SET)
    assert len(phase1) == len(files) and all(op.status == "COMPLETED" for op in phase1)
    assert leaks(split) == []
