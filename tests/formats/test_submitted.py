"""formats/submitted.py: the ledger of builds submitted is appended to, never rewritten, and
names the first run started on a build."""

from __future__ import annotations

from pathlib import Path

from bulkimg.formats.submitted import (
    SUBMITTED_FILE,
    SubmittedRecord,
    append_submitted,
    submitted_by,
)

A, B = "a" * 64, "b" * 64


def record(build: str, run_id: str) -> SubmittedRecord:
    return SubmittedRecord(build=build, run_id=run_id, started_at="2026-12-04T01:00:00+00:00")


def test_a_recorded_build_is_found_by_its_digest_as_written(tmp_path: Path) -> None:
    append_submitted(tmp_path, record(A, "run1"))
    assert submitted_by(tmp_path, A) == record(A, "run1")


def test_a_build_never_submitted_is_not_found(tmp_path: Path) -> None:
    append_submitted(tmp_path, record(A, "run1"))
    assert submitted_by(tmp_path, B) is None


def test_without_a_ledger_or_a_digest_nothing_was_submitted(tmp_path: Path) -> None:
    assert submitted_by(tmp_path, A) is None
    append_submitted(tmp_path, record(A, "run1"))
    assert submitted_by(tmp_path, None) is None


def test_each_run_appends_one_line_and_the_first_run_on_a_build_is_named(tmp_path: Path) -> None:
    append_submitted(tmp_path, record(B, "run1"))
    append_submitted(tmp_path, record(A, "run2"))
    append_submitted(tmp_path, record(A, "run3"))  # `submit --again`
    lines = (tmp_path / SUBMITTED_FILE).read_bytes().splitlines()
    assert len(lines) == 3
    assert lines[0] == (
        b'{"build":"' + B.encode() + b'","run_id":"run1","started_at":"2026-12-04T01:00:00+00:00"}'
    )
    found = submitted_by(tmp_path, A)
    assert found is not None and found.run_id == "run2"


def test_fields_a_newer_bulkimg_adds_are_ignored_when_read(tmp_path: Path) -> None:
    (tmp_path / SUBMITTED_FILE).write_text(
        f'{{"build":"{A}","run_id":"r","started_at":"t","shop":"x.myshopify.com"}}\n\n'
    )
    assert submitted_by(tmp_path, A) == SubmittedRecord(build=A, run_id="r", started_at="t")
