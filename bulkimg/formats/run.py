"""output/run.json: the state of a submit, saved before every step that creates something remotely.

A killed `submit` re-run reads it and resumes: it polls operations it already started and never
submits the same file twice.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, Field

from bulkimg.errors import InputFileError
from bulkimg.formats.failures import FailureRecord, LineError

RUN_FILE = "run.json"


class Step(StrEnum):
    """Where one bulk operation of the run stands (each step is saved before the next begins)."""

    NEW = "new"  # input file known; nothing remote yet
    UPLOADED = "uploaded"  # staged upload done: staged_upload_path known
    SUBMITTING = "submitting"  # bulkOperationRunMutation may have been sent
    SUBMITTED = "submitted"  # operation id known; polling
    FINISHED = "finished"  # the operation ended (any status)
    COLLECTED = "collected"  # its result lines are downloaded
    REJECTED = "rejected"  # Shopify refused to start it (userErrors); its lines failed


class Phase(StrEnum):
    RESOLVE = "resolve"  # a bulk query of the shop's products, before any line is written
    PRODUCT_SET = "product_set"
    EXPORT = "export"  # a bulk query of the run's products, their media and variants
    VARIANT_DETACH = "variant_detach"  # variant images detached before others are attached
    VARIANT_MEDIA = "variant_media"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class OperationRecord(BaseModel):
    """One input file and the bulk operation that runs it."""

    phase: Phase
    input_file: str
    input_sha256: str
    input_lines: int
    document: str
    # A bulk query's `products(query:)` search (Shopify's search syntax): only the products
    # still processing images are exported again while a run waits for them. None: every product.
    search: str | None = None
    step: Step = Step.NEW
    staged_upload_path: str | None = None
    submitting_since: str | None = None
    operation_id: str | None = None
    status: str | None = None
    error_code: str | None = None
    object_count: int = 0
    rejected_errors: list[LineError] = Field(default_factory=list)
    result_file: str | None = None
    partial_file: str | None = None
    finished_at: str | None = None

    @property
    def active(self) -> bool:
        return self.step in (Step.SUBMITTING, Step.SUBMITTED)

    @property
    def is_query(self) -> bool:
        """A bulk query (no input file), not a bulk mutation."""
        return self.phase in (Phase.RESOLVE, Phase.EXPORT)


class RunState(BaseModel):
    """Everything a resumed submit needs; no secrets and no signed URLs."""

    run_id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])
    created_at: str = Field(default_factory=now_iso)
    shop: str
    plan_file: str | None = None
    # The build's lines (create form) and their checksums; submit resolves them against an
    # export of the shop into the files phase 1 runs (resolution_file says what each group got).
    source_files: list[str] = Field(default_factory=list)
    source_sha256: list[str] = Field(default_factory=list)
    resolved: bool = False
    resolution_file: str | None = None
    # A canary (`submit --limit N`): only the first N products with a line are sent; these.
    limit: int | None = None
    canary: list[str] = Field(default_factory=list)
    # Every variant gets its primary image (`--replace-variant-images`), whatever it shows.
    replace_variant_images: bool = False
    operations: list[OperationRecord] = Field(default_factory=list)
    media_wait_until: str | None = None
    # Groups whose product is already right (a retry of phase 2 only): no productSet line.
    phase1_skipped: list[str] = Field(default_factory=list)
    # A retry merges its outcome into the earlier manifest and keeps these failures.
    merge_manifest: bool = False
    carried_failures: list[FailureRecord] = Field(default_factory=list)
    detach_written: bool = False  # phase 2's detach lines are written (they run first)
    phase2_done: bool = False
    completed_at: str | None = None
    # Why a run ended before it sent anything (its build changed first), else None.
    abandoned: str | None = None
    # `bulkimg cancel`: live operations were asked to stop, none starts any more.
    cancelled_at: str | None = None

    def ops(self, phase: Phase) -> list[OperationRecord]:
        return [op for op in self.operations if op.phase is phase]


class RunStore:
    """Loads and atomically saves output/run.json."""

    def __init__(self, output_dir: Path, name: str = RUN_FILE) -> None:
        self.path = output_dir / name

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> RunState:
        try:
            return RunState.model_validate_json(self.path.read_bytes())
        except FileNotFoundError:
            raise InputFileError(f"{self.path} not found: nothing has been submitted") from None
        except ValueError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputFileError(
                f"{self.path} is not a valid run file ({first}): `bulkimg cancel` sets it aside"
            ) from None

    def save(self, state: RunState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with temp.open("wb") as handle:
            handle.write(state.model_dump_json(indent=2).encode())
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(self.path)
