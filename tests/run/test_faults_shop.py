"""Fault matrix, Shopify: what the shop can do wrong, and what bulkimg promises after it.

Every test injects a fault into the sandbox shop (over loopback), runs submit (and retry), and
checks the accounting: each group of the plan is in the manifest once, as done / missing, or
failed with a retryable failure line that says why; no product holds a duplicated image; no
image was downloaded by the shop more often than needed; no canary secret was written.

The sample catalog is built once per module (moto's S3 server) and copied by each test.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from pathlib import Path

import pytest

from bulkimg.config import Settings
from bulkimg.demo.run import LocalS3
from bulkimg.formats.run import Phase, RunStore
from bulkimg.run.preview import render_preview
from bulkimg.sandbox import FaultRule, SandboxShop
from bulkimg.shopify.results import read_export
from tests.helpers.env import BUCKET, CANARY_KEY_ID, CANARY_TOKEN, secrets_in
from tests.helpers.faultbuild import (
    all_done,
    assert_accounted,
    planned_uploads,
    settings_over_build,
)
from tests.helpers.files import read_jsonl
from tests.helpers.fixtures import MakeSettings
from tests.helpers.sandbox import wait_for
from tests.helpers.shop import graphql, mutation_operations, retry, submit


@pytest.fixture
def settings(
    built: Path, tmp_path: Path, make_settings: MakeSettings, s3_server: LocalS3, shop_url: str
) -> Settings:
    """Settings over a copy of the module's build, for this test's sandbox shop."""
    return settings_over_build(built, tmp_path, make_settings, s3_server, shop_url)


SHOPIFY = "Shopify"


# -- what every row asserts -------------------------------------------------------------------


# -- the rows ---------------------------------------------------------------------------------


@pytest.mark.fault_matrix(
    area=SHOPIFY,
    fault="timeouts on every route: GraphQL call, bulkOperation poll, staged upload POST,"
    " result download",
    outcome="each request retried; one submission per file; run completes, 0 failures",
)
def test_timeouts_on_every_route_are_retried_without_a_second_submission(
    settings: Settings, shop: SandboxShop, shop_url: str
) -> None:
    for rule in (
        FaultRule("graphql", delay=1.5, count=1, operation_name="StagedUploadsCreate"),
        FaultRule("staged_upload", delay=1.5, count=1),
        FaultRule("graphql", delay=1.5, count=1, operation_name="BulkOperation"),
        FaultRule("result_download", delay=1.5, count=1),
    ):
        shop.faults.add(rule)
    retries: Counter[str] = Counter()
    outcome = submit(settings.model_copy(update={"shopify_timeout": 1.0}), retries)
    assert outcome.exit_code == 0, read_jsonl(settings.output_dir / "failures.jsonl")
    assert shop.faults.rules() == []
    assert retries["ShopifyNetworkError"] >= 4
    assert len(mutation_operations(shop_url)) == 2  # productSet once, variant images once
    assert all_done(assert_accounted(settings, shop))
    assert shop.faults.seen("media_fetch") == planned_uploads(settings)


@pytest.mark.fault_matrix(
    area=SHOPIFY,
    fault="stagedUploadsCreate answers a userError (no target)",
    outcome="the file's lines fail STAGED_UPLOAD_REFUSED, retryable, exit 3, run.json finished;"
    " retry sends them, every image uploaded once",
)
def test_refused_staged_upload_fails_its_lines_retryably_and_retry_sends_them(
    settings: Settings, shop: SandboxShop, shop_url: str
) -> None:
    shop.faults.add(
        FaultRule("graphql", operation_name="StagedUploadsCreate", user_error="refused", count=1)
    )
    first = submit(settings)
    assert first.exit_code == 3 and first.finished
    manifest = assert_accounted(settings, shop)
    assert {e["status"] for e in manifest.values()} == {"failed"}
    codes = {f["errors"][0]["code"] for f in read_jsonl(settings.output_dir / "failures.jsonl")}
    assert codes == {"STAGED_UPLOAD_REFUSED"}
    assert mutation_operations(shop_url) == []
    assert RunStore(settings.output_dir).load().completed_at is not None  # nothing blocks

    second = retry(settings)
    assert second.exit_code == 0
    assert all_done(assert_accounted(settings, shop))
    assert shop.faults.seen("media_fetch") == planned_uploads(settings)


@pytest.mark.fault_matrix(
    area=SHOPIFY,
    fault="bulkOperationRunMutation answers OPERATION_IN_PROGRESS (twice)",
    outcome="waits and submits again; one operation per file; run completes, 0 failures",
)
def test_operation_in_progress_makes_it_wait_then_submit_once(
    settings: Settings, shop: SandboxShop, shop_url: str
) -> None:
    shop.faults.add(
        FaultRule(
            "graphql",
            operation_name="BulkOperationRunMutation",
            user_error="A bulk mutation operation for this app and shop is already in progress.",
            user_error_code="OPERATION_IN_PROGRESS",
            count=2,
        )
    )
    outcome = submit(settings)
    assert outcome.exit_code == 0, read_jsonl(settings.output_dir / "failures.jsonl")
    assert shop.faults.seen("graphql", "BulkOperationRunMutation") == 4
    assert len(mutation_operations(shop_url)) == 2
    assert all_done(assert_accounted(settings, shop))


CANCEL = "mutation($id: ID!) { bulkOperationCancel(id: $id) { userErrors { message } } }"


@pytest.mark.fault_matrix(
    area=SHOPIFY,
    fault="the productSet bulk operation is cancelled from the shop side while it runs",
    outcome="CANCELED: every line NOT_RUN (no result file), retryable, exit 3; retry completes,"
    " no duplicated image, none uploaded twice",
)
@pytest.mark.parametrize("shop", [{"bulk_line_delay": 1.0}], indirect=True)  # time to cancel
def test_operation_cancelled_on_the_shop_is_retried_without_duplicates(
    settings: Settings, shop: SandboxShop, shop_url: str
) -> None:
    def cancel_when_running() -> None:
        wait_for(lambda: shop.faults.seen("bulk_mutation"), bool, timeout=60)
        (operation,) = mutation_operations(shop_url)
        graphql(shop_url, CANCEL, {"id": operation["id"]})

    canceller = threading.Thread(target=cancel_when_running)
    canceller.start()
    first = submit(settings)
    canceller.join()
    assert first.exit_code == 3
    (phase1,) = RunStore(settings.output_dir).load().ops(Phase.PRODUCT_SET)
    assert phase1.status == "CANCELED" and phase1.result_file is None
    manifest = assert_accounted(settings, shop)
    assert {e["status"] for e in manifest.values()} == {"failed"}
    failures = read_jsonl(settings.output_dir / "failures.jsonl")
    assert {f["errors"][0]["code"] for f in failures} == {"NOT_RUN"}

    second = retry(settings)
    assert second.exit_code == 0
    assert all_done(assert_accounted(settings, shop))
    # Lines that ran before the cancel have no result, yet their images are not sent again:
    # the export after phase 1 covers every line sent, and the retry keeps what it found.
    assert shop.faults.seen("media_fetch") == planned_uploads(settings)


@pytest.mark.fault_matrix(
    area=SHOPIFY,
    fault="the signed result URL has expired when downloaded (the operation is EXPIRED: results"
    " gone, a new query gives no URL)",
    outcome="its lines count NOT_RUN, retryable, exit 3; retry resolves them against the shop:"
    " completes, no image uploaded twice",
)
@pytest.mark.parametrize("shop", [{"result_url_lifetime": 1.0}], indirect=True)
def test_expired_results_count_as_not_run_and_retry_uploads_nothing_twice(
    settings: Settings, shop: SandboxShop
) -> None:
    shop.faults.add(FaultRule("result_download", delay=2.5, count=1))  # held past its expiry
    first = submit(settings)
    assert first.exit_code == 3
    (phase1,) = RunStore(settings.output_dir).load().ops(Phase.PRODUCT_SET)
    assert phase1.status == "EXPIRED" and phase1.result_file is None
    failures = read_jsonl(settings.output_dir / "failures.jsonl")
    assert {f["errors"][0]["code"] for f in failures} == {"NOT_RUN"}
    assert all(f["retryable"] for f in failures)
    second = retry(settings)
    assert second.exit_code == 0, read_jsonl(settings.output_dir / "failures.jsonl")
    assert all_done(assert_accounted(settings, shop))
    # Every line had run: the retry finds each image on its product and uploads none again.
    assert shop.faults.seen("media_fetch") == planned_uploads(settings)


@pytest.mark.fault_matrix(
    area=SHOPIFY,
    fault="a media stays PROCESSING past BULKIMG_MEDIA_WAIT_SECONDS",
    outcome="its group fails MEDIA_NOT_READY, retryable; retry attaches it without a new upload",
)
def test_media_still_processing_after_the_wait_is_attached_by_retry_without_reupload(
    settings: Settings, shop: SandboxShop
) -> None:
    shop.faults.add(FaultRule("media_fetch", delay=3.0, url_contains="1102192-1a", count=1))
    first = submit(settings.model_copy(update={"media_wait_seconds": 0.5}))
    assert first.exit_code == 1
    manifest = assert_accounted(settings, shop)
    assert manifest["LGD-101792"]["status"] == "failed"  # others may still process too
    failures = read_jsonl(settings.output_dir / "failures.jsonl")
    assert {f["errors"][0]["code"] for f in failures} == {"MEDIA_NOT_READY"}
    held = [f for f in failures if f["variables"]["s3_key"].endswith("1102192-1a-100.jpg")]
    assert [f["group_id"] for f in held] == ["LGD-101792"]

    second = retry(settings)  # waits up to media_wait_seconds for it this time
    assert second.exit_code == 0
    manifest = assert_accounted(settings, shop)
    assert all_done(manifest)
    entry = manifest["LGD-101792"]
    assert [v["media_id"] for v in entry["variants"]][:2] == [entry["media"][0]["id"]] * 2
    assert shop.faults.seen("media_fetch") == planned_uploads(settings)  # none uploaded twice


@pytest.mark.fault_matrix(
    area=SHOPIFY,
    fault="bulk operation COMPLETED but some lines have no result line",
    outcome="those groups fail NOT_RUN, retryable, exit 1; retry sends only them, each image"
    " uploaded once",
)
def test_lines_without_a_result_are_not_run_and_retry_uploads_each_image_once(
    settings: Settings, shop: SandboxShop
) -> None:
    shop.faults.add(FaultRule("bulk_mutation", skip_lines=(0, 3), count=1))
    first = submit(settings)
    assert first.exit_code == 1
    assert first.counts["lines_failed"] == 2
    manifest = assert_accounted(settings, shop)
    assert sum(1 for e in manifest.values() if e["status"] == "failed") == 2
    # The page meant to review failures renders them (media not on the shop: status null).
    page = render_preview(settings)
    assert page.groups == len(manifest) and b"failed" in page.path.read_bytes()
    second = retry(settings)
    assert second.exit_code == 0
    assert second.counts["lines_submitted"] == 2
    assert all_done(assert_accounted(settings, shop))
    assert shop.faults.seen("media_fetch") == planned_uploads(settings)


@pytest.mark.fault_matrix(
    area=SHOPIFY,
    fault="the export of the shop the lines are resolved from (bulk query) ends FAILED",
    outcome="a new export is run before any line is written; run completes, exit 0",
)
def test_failed_shop_export_is_run_again_before_anything_is_sent(
    settings: Settings, shop: SandboxShop
) -> None:
    shop.faults.add(FaultRule("bulk_query", fail_after_lines=0, count=1))
    outcome = submit(settings)
    assert outcome.exit_code == 0, read_jsonl(settings.output_dir / "failures.jsonl")
    exports = RunStore(settings.output_dir).load().ops(Phase.RESOLVE)
    assert [op.status for op in exports] == ["FAILED", "COMPLETED"]
    assert all_done(assert_accounted(settings, shop))
    assert shop.faults.seen("media_fetch") == planned_uploads(settings)


@pytest.mark.fault_matrix(
    area=SHOPIFY,
    fault="the product export after phase 1 (bulk query) ends FAILED",
    outcome="a new export is run; run completes, 0 failures, exit 0, no image re-sent",
)
def test_failed_export_is_run_again(settings: Settings, shop: SandboxShop) -> None:
    shop.faults.add(FaultRule("bulk_query", fail_after_lines=2, count=1, after=1))
    outcome = submit(settings)
    assert outcome.exit_code == 0, read_jsonl(settings.output_dir / "failures.jsonl")
    exports = RunStore(settings.output_dir).load().ops(Phase.EXPORT)
    assert [op.status for op in exports][:2] == ["FAILED", "COMPLETED"]
    assert all_done(assert_accounted(settings, shop))
    assert shop.faults.seen("media_fetch") == planned_uploads(settings)


@pytest.mark.fault_matrix(
    area="Secrets",
    fault="Shopify quotes a presigned image URL in an error message (userError, media error)",
    outcome="failures.jsonl and the upload-failure log hold it with X-Amz-Signature,"
    " X-Amz-Credential and X-Amz-Security-Token redacted",
)
def test_presigned_urls_quoted_in_errors_are_redacted(make_settings: MakeSettings) -> None:

    from bulkimg.formats.failures import LineError, MediaFailure, failure_of
    from bulkimg.formats.jsonl import dump_model
    from bulkimg.formats.logs import upload_failure_lines
    from bulkimg.s3.client import make_s3_client

    s3 = make_s3_client(make_settings())
    params = {"Bucket": BUCKET, "Key": "sorted-media/11/02/19/1102192-1a-100.jpg"}
    url = s3.generate_presigned_url("get_object", Params=params, ExpiresIn=600)
    assert "X-Amz-Signature=" in url and CANARY_TOKEN in url and CANARY_KEY_ID in url
    message = f"Image could not be downloaded from {url}"
    failure = failure_of(
        "variant_media", "LGD-101792", "lgd-101792", None, None,
        MediaFailure(product_id=None, media_id="gid://shopify/MediaImage/1", s3_key=params["Key"]),
        [LineError(code="MEDIA_FAILED", message=message)], True,
    )  # fmt: skip
    written = dump_model(failure).decode() + "".join(upload_failure_lines([], [failure]))
    assert secrets_in([], written) == []
    assert CANARY_KEY_ID not in written and CANARY_TOKEN not in written
    assert written.count("X-Amz-Signature=REDACTED") == 2
    assert "Image could not be downloaded from" in written


@pytest.mark.fault_matrix(
    area=SHOPIFY,
    fault="one image is slow to process while the run waits for its media",
    outcome="says how many images on how many products it waits for, no progress line twice;"
    " each further export holds only those products (`id:… OR id:…`), not the whole shop",
)
def test_waiting_for_media_says_how_many_images_it_waits_for_and_exports_only_those_products(
    settings: Settings, shop: SandboxShop
) -> None:
    from bulkimg.progress import NullReporter
    from bulkimg.run.ledger import productset_files_of_build
    from bulkimg.run.submit import Submission
    from bulkimg.shopify.client import client_from_settings

    class Said(NullReporter):
        def __init__(self) -> None:
            self.lines: list[str] = []

        def info(self, message: str) -> None:
            self.lines.append(message)

        def start(self, stage: str, total: int) -> None:
            self.lines.append(f"started {stage}")

    shop.faults.add(FaultRule("media_fetch", delay=2.0, url_contains="1102192-1a", count=1))
    said = Said()
    with client_from_settings(settings) as client:
        submission = Submission(settings, client, said)
        state = submission.start(productset_files_of_build(settings.output_dir))
        assert submission.run(state, wait=True).exit_code == 0
    waits = [line for line in said.lines if line.startswith("waiting for ")]
    assert waits and re.fullmatch(
        r"waiting for [1-9]\d* images still processing on [1-9]\d* products \(until .+\);"
        r" then export #\d+ of those products",
        waits[0],
    )
    started = [line for line in said.lines if line.startswith("started ")]
    assert len(started) == len(set(started)), started  # no progress line is shown twice
    # Only the products still processing are exported again, by id: not the whole shop.
    first, *again = state.ops(Phase.EXPORT)
    assert first.search is None and again
    waiting = int(re.search(r" on (\d+) products", waits[0])[1])  # type: ignore[index]
    searched = again[0].search or ""
    assert re.fullmatch(r"id:\d+( OR id:\d+)*", searched)
    assert searched.count("id:") == waiting < len(read_export(Path(first.result_file or "")))
    exported = read_export(Path(again[0].result_file or ""))
    assert sorted(p.id.rsplit("/", 1)[1] for p in exported.values()) == sorted(
        searched.replace("id:", "").split(" OR ")
    )
