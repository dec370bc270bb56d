"""What the last build left for the commands after it: its productSet files (from
build-report.json), one digest of them, the ledger output/submitted.jsonl (a build is sent once),
and the region it signed for."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from bulkimg.config import Settings
from bulkimg.errors import InputFileError
from bulkimg.formats.build_report import read_build_report
from bulkimg.formats.run import RunState
from bulkimg.formats.submitted import SubmittedRecord, append_submitted
from bulkimg.shopify.bulkjob import sha256_of

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def build_digest(files: Iterable[tuple[str, str]]) -> str | None:
    """One digest of a build's lines from its (file, sha256) pairs; None for a build with nothing
    to send. Each build signs its URLs afresh, so two builds never share one."""
    named = sorted((Path(f).name, sha) for f, sha in files if sha != EMPTY_SHA256)
    if not named:
        return None
    digest = hashlib.sha256()
    for name, sha in named:
        digest.update(f"{name}\0{sha}\n".encode())
    return digest.hexdigest()


def digest_of_build(productset_files: list[Path]) -> str | None:
    """build_digest of the build's files as they are now (one read of each)."""
    return build_digest((str(p), sha256_of(p)) for p in productset_files if p.is_file())


def digest_of_run(state: RunState) -> str | None:
    """build_digest of the files a run started on, from the checksums it recorded."""
    return build_digest(zip(state.source_files, state.source_sha256, strict=True))


def record_submission(output_dir: Path, state: RunState) -> None:
    """Remember that a run started on this build (output/submitted.jsonl), after run.json."""
    digest = digest_of_run(state)
    if digest is None:
        return
    record = SubmittedRecord(build=digest, run_id=state.run_id, started_at=state.created_at)
    append_submitted(output_dir, record)


def productset_files_of_build(output_dir: Path) -> list[Path]:
    """The JSONL files the last build wrote (from build-report.json)."""
    files = [Path(p) for p in read_build_report(output_dir).productset_files]
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise InputFileError(f"{missing[0]} not found: run `bulkimg build` again")
    return files


def signing_settings(settings: Settings) -> Settings:
    """`settings` with the region the last build signed for (build-report.json's
    `signing_region`, learnt from the bucket): commands after a build sign locally, without
    asking S3 again."""
    try:
        region = read_build_report(settings.output_dir).signing_region
    except InputFileError:
        return settings  # no build yet (or an unreadable report): the configured region
    if not region or region == settings.aws_region:
        return settings
    return settings.model_copy(update={"aws_region": region})
