"""`output/submitted.jsonl`: the ledger of builds submitted, one line per run started (append
only), so a build is sent at most once (`submit --again` to send it once more)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from bulkimg.formats.jsonl import dump_model, read_models

SUBMITTED_FILE = "submitted.jsonl"


class SubmittedRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    build: str  # the digest of the build's productSet files (run/submit.py: build_digest)
    run_id: str
    started_at: str


def append_submitted(output_dir: Path, record: SubmittedRecord) -> None:
    with (output_dir / SUBMITTED_FILE).open("ab") as ledger:
        ledger.write(dump_model(record))


def submitted_by(output_dir: Path, digest: str | None) -> SubmittedRecord | None:
    """The earlier run that was started on the build of this digest, if any."""
    ledger = output_dir / SUBMITTED_FILE
    if digest is None or not ledger.is_file():
        return None
    return next((r for r in read_models(ledger, SubmittedRecord) if r.build == digest), None)
