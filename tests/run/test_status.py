"""run/status.py next_step: the one command `bulkimg status` tells the user to run next, from
run.json, failures.jsonl, the last build's report and the ledger of builds submitted."""

from __future__ import annotations

from pathlib import Path

from bulkimg.formats.build_report import BuildReport, dump_build_report
from bulkimg.formats.failures import FailureRecord, LineError, write_failures
from bulkimg.formats.run import RunState
from bulkimg.formats.submitted import SubmittedRecord, append_submitted
from bulkimg.run.ledger import digest_of_build
from bulkimg.run.status import next_step

DONE = "2026-12-04T03:00:00+00:00"
UNFINISHED = "unfinished: `bulkimg submit --wait` resumes it; `bulkimg cancel` stops it"
CANCELLING = "being cancelled: `bulkimg cancel` finishes stopping it"
NOT_SUBMITTED = "the current build is not submitted yet: `bulkimg submit --wait` sends it"
NOTHING = "nothing to do: `bulkimg build` (or the nightly `bulkimg run`) makes a new build"


def run(completed_at: str | None = DONE, cancelled_at: str | None = None) -> RunState:
    return RunState(shop="x.myshopify.com", completed_at=completed_at, cancelled_at=cancelled_at)


def failure(retryable: bool) -> FailureRecord:
    code = "THROTTLED" if retryable else "INVALID"
    error = LineError(code=code, message="refused")
    return FailureRecord(phase="product_set", group_id="G1", errors=[error], retryable=retryable)


def build(out: Path, *contents: bytes) -> list[Path]:
    """A build whose report names productSet files of these contents."""
    files = []
    for n, content in enumerate(contents):
        path = out / f"productset-{n}.jsonl"
        path.write_bytes(content)
        files.append(path)
    report = BuildReport(
        started_at=DONE, groups=1, groups_written=1, groups_deferred={}, variants=1,
        rows_read=1, row_problems=[], image_skus=1, folders_needed=1, list_strategy="prefix",
        prefixes_swept=1, list_pages=1, objects_listed=1, s3_requests={}, s3_http_attempts=0,
        cache_hits=0, images_probed=0, probe_bytes={}, images_accepted=0, images_rejected={},
        variants_missing_images={}, media_in_lines=0, productset_files=[str(f) for f in files],
        plan_file="plan.jsonl", missing_log="missing.log", preview_file="preview.html",
        thumbnail_gets=0, wall_seconds=1.0, seconds_per_image_sku=0.1,
    )  # fmt: skip
    (out / "build-report.json").write_bytes(dump_build_report(report))
    return files


def submitted(out: Path, files: list[Path]) -> None:
    digest = digest_of_build(files)
    assert digest is not None
    append_submitted(out, SubmittedRecord(build=digest, run_id="r1", started_at=DONE))


def test_a_run_not_completed_is_resumed_or_cancelled(tmp_path: Path) -> None:
    assert next_step(run(completed_at=None), tmp_path) == UNFINISHED


def test_a_run_not_completed_after_cancel_is_finished_by_cancel(tmp_path: Path) -> None:
    assert next_step(run(completed_at=None, cancelled_at=DONE), tmp_path) == CANCELLING


def test_an_unfinished_run_comes_before_its_failures_and_build(tmp_path: Path) -> None:
    write_failures(tmp_path / "failures.jsonl", [failure(retryable=True)])
    build(tmp_path, b'{"a":1}\n')
    assert next_step(run(completed_at=None), tmp_path) == UNFINISHED


def test_a_completed_run_with_a_retryable_failure_is_retried_from_its_file(
    tmp_path: Path,
) -> None:
    failures = tmp_path / "failures.jsonl"
    write_failures(failures, [failure(retryable=False), failure(retryable=True)])
    submitted(tmp_path, build(tmp_path, b'{"a":1}\n'))
    expected = f"done with retryable failures: `bulkimg retry {failures}`"
    assert next_step(run(), tmp_path) == expected


def test_a_completed_cancelled_run_is_done_not_being_cancelled(tmp_path: Path) -> None:
    submitted(tmp_path, build(tmp_path, b'{"a":1}\n'))
    assert next_step(run(cancelled_at=DONE), tmp_path) == NOTHING


def test_failures_no_retry_can_fix_leave_the_build_to_submit(tmp_path: Path) -> None:
    write_failures(tmp_path / "failures.jsonl", [failure(retryable=False)])
    build(tmp_path, b'{"a":1}\n')
    assert next_step(run(), tmp_path) == NOT_SUBMITTED


def test_a_build_not_in_the_ledger_is_to_be_submitted(tmp_path: Path) -> None:
    submitted(tmp_path, build(tmp_path, b'{"old":1}\n'))
    build(tmp_path, b'{"new":1}\n')  # a newer build over the submitted one
    assert next_step(run(), tmp_path) == NOT_SUBMITTED


def test_a_build_in_the_ledger_leaves_nothing_to_do(tmp_path: Path) -> None:
    submitted(tmp_path, build(tmp_path, b'{"a":1}\n', b'{"b":2}\n'))
    assert next_step(run(), tmp_path) == NOTHING


def test_a_build_with_no_lines_to_send_leaves_nothing_to_do(tmp_path: Path) -> None:
    build(tmp_path, b"")
    assert next_step(run(), tmp_path) == NOTHING


def test_no_build_report_or_a_missing_productset_file_leaves_nothing_to_do(
    tmp_path: Path,
) -> None:
    assert next_step(run(), tmp_path) == NOTHING
    build(tmp_path, b'{"a":1}\n')[0].unlink()
    assert next_step(run(), tmp_path) == NOTHING
