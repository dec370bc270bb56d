"""One object owns the life cycle of a run's bulk operations: stage, upload, run, poll, collect.

Each OperationRecord moves through the steps of `formats.run.Step`; the step is saved to run.json
*before* the remote call that creates something, so a killed process resumes where it was:

    NEW ──stage+upload──► UPLOADED ──save, then run──► SUBMITTING ──► SUBMITTED ──poll──► FINISHED
                              ▲  (limit reached: wait)       │ (answer lost: find it by time)   │
                              └──────────────────────────────┘                           collect
                                                                                            ▼
                                                                                       COLLECTED
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_result, stop_never

from bulkimg.formats.failures import LineError
from bulkimg.formats.run import OperationRecord, Phase, RunState, RunStore, Step, now_iso
from bulkimg.progress import NullReporter, Reporter
from bulkimg.shopify.client import (
    ResultUrlExpiredError,
    ShopifyClient,
    ShopifyError,
    ShopifyNetworkError,
    ShopifyServerError,
    ShopifyUnreachableError,
)
from bulkimg.shopify.documents import load_document, search_in_bulk_query
from bulkimg.shopify.operation import BulkOperationNode
from bulkimg.shopify.results import STAGED_UPLOAD_REFUSED
from bulkimg.statuses import TERMINAL_STATUSES

BUSY_CODES = frozenset({"LIMIT_REACHED", "OPERATION_IN_PROGRESS", "INTERNAL_FILE_SERVER_ERROR"})
RESTAGE_CODES = frozenset({"NO_SUCH_FILE", "INVALID_STAGED_UPLOAD_FILE"})
# Clock skew allowed between us and Shopify when finding an operation whose answer was lost.
RECOVERY_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How the runner waits: concurrency limit, poll interval growing to a cap."""

    concurrency: int = 5
    interval: float = 2.0
    max_interval: float = 30.0
    growth: float = 1.5
    # After an unanswered run request, how long it may still appear on the shop: only then
    # is it safe to submit the file again.
    uncertain_wait: float = 60.0

    def interval_after(self, waits: int) -> float:
        """The wait after `waits` earlier ones: `interval`, then each `growth` times the last,
        at most `max_interval` (multiplied step by step: the same floats every poll gets)."""
        interval = self.interval
        for _ in range(waits):
            interval = min(self.max_interval, interval * self.growth)
        return interval


def growing_interval(policy: PollPolicy) -> Callable[[RetryCallState], float]:
    """A tenacity wait: `policy.interval_after` the attempts before this one."""

    def wait(state: RetryCallState) -> float:
        return policy.interval_after(state.attempt_number - 1)

    return wait


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for raw in handle if raw.strip())


def new_record(
    phase: Phase, path: Path, document: str, search: str | None = None
) -> OperationRecord:
    """A record for an input file (or, with an empty path, for a bulk query, of the products
    `search` finds: every product when None)."""
    if not str(path) or phase in (Phase.EXPORT, Phase.RESOLVE):
        return OperationRecord(
            phase=phase,
            input_file="",
            input_sha256="",
            input_lines=0,
            document=document,
            search=search,
        )
    return OperationRecord(
        phase=phase,
        input_file=str(path),
        input_sha256=sha256_of(path),
        input_lines=count_lines(path),
        document=document,
    )


class BulkRunner:
    """Drives the operations of one phase of a run to COLLECTED (or REJECTED)."""

    def __init__(
        self,
        client: ShopifyClient,
        store: RunStore,
        state: RunState,
        results_dir: Path,
        policy: PollPolicy | None = None,
        reporter: Reporter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.store = store
        self.state = state
        self.results_dir = results_dir
        self.policy = policy or PollPolicy()
        self.reporter: Reporter = reporter or NullReporter()
        self.sleep = sleep
        self._handlers: dict[Step, Callable[[OperationRecord], None]] = {
            Step.NEW: self._stage,
            Step.UPLOADED: self._submit,
            Step.SUBMITTING: self._recover,
            Step.SUBMITTED: self._poll,
            Step.FINISHED: self._collect,
        }
        self._busy = False

    def save(self) -> None:
        self.store.save(self.state)

    def run(self, phase: Phase, wait: bool = True) -> list[OperationRecord]:
        """Advance every operation of `phase`; with wait, until all are collected."""
        ops = self.state.ops(phase)
        # Only operations with something left to do are shown: one collected by an earlier
        # call (an earlier export round) was shown then and is never repeated.
        shown = [op for op in ops if op.step not in (Step.COLLECTED, Step.REJECTED)]
        for op in shown:
            self.reporter.start(self._stage_name(op), max(op.input_lines, 1))
        # One round per attempt, again while it returns False, after a growing interval.
        Retrying(
            retry=retry_if_result(lambda done: not done),
            stop=stop_never,
            wait=growing_interval(self.policy),
            sleep=lambda seconds: self.sleep(float(seconds)),
        )(self._round, ops, wait)
        for op in shown:
            self.reporter.finish(self._stage_name(op))
        return ops

    def _round(self, ops: list[OperationRecord], wait: bool) -> bool:
        """Advance every operation once; True when the caller stops polling: all collected, or
        (without wait) nothing left to start now."""
        self._busy = False
        for op in ops:
            self._advance(op, ops)
        if all(op.step in (Step.COLLECTED, Step.REJECTED) for op in ops):
            return True
        waiting_to_start = any(op.step in (Step.NEW, Step.UPLOADED) for op in ops)
        return not wait and (not waiting_to_start or not self._has_capacity(ops))

    def _advance(self, op: OperationRecord, ops: list[OperationRecord]) -> None:
        # Several cheap steps may follow each other; polling happens once per round.
        for _ in range(4):
            step = op.step
            if step in (Step.NEW, Step.UPLOADED) and not self._has_capacity(ops):
                return
            handler = self._handlers.get(step)
            if handler is None:
                return
            handler(op)
            if op.step == step or op.step is Step.SUBMITTED:
                return

    def _has_capacity(self, ops: list[OperationRecord]) -> bool:
        running = sum(1 for op in self.state.operations if op.active)
        return not self._busy and running < self.policy.concurrency

    def _stage_name(self, op: OperationRecord) -> str:
        if op.input_file:
            return f"Bulk {op.phase.value} {Path(op.input_file).name}"
        number = self.state.ops(op.phase).index(op) + 1
        if op.phase is Phase.RESOLVE:
            return f"Bulk export of the shop's products #{number}"
        if op.search:
            waiting = op.search.count(" OR ") + 1
            return f"Bulk export of the {waiting} products still processing images #{number}"
        return f"Bulk export of products #{number}"

    # -- steps -------------------------------------------------------------------------------

    def _stage(self, op: OperationRecord) -> None:
        if op.is_query:
            op.step = Step.UPLOADED  # a bulk query has no input file
            return
        path = Path(op.input_file)
        if sha256_of(path) != op.input_sha256:
            raise ShopifyError(f"{path} changed since this run started; run `bulkimg build` again")
        data = self.client.execute(
            "staged_uploads_create",
            {
                "input": [
                    {
                        "resource": "BULK_MUTATION_VARIABLES",
                        "filename": path.name,
                        "mimeType": "text/jsonl",
                        "httpMethod": "POST",
                        "fileSize": str(path.stat().st_size),
                    }
                ]
            },
        )
        payload = data["stagedUploadsCreate"]
        if payload["userErrors"] or not payload.get("stagedTargets"):
            # Not raised: an unfinished run.json would block every later submit. The file's
            # lines fail (retryable: they were never sent) and the other files go on.
            op.step, op.finished_at = Step.REJECTED, now_iso()
            op.rejected_errors = [_staging_error(e) for e in payload["userErrors"] or [{}]]
            self.save()
            return
        target = payload["stagedTargets"][0]
        params = {p["name"]: p["value"] for p in target["parameters"]}
        self.client.upload_staged(target["url"], params, path)
        op.staged_upload_path = params["key"]
        op.step = Step.UPLOADED
        self.save()

    def _submit(self, op: OperationRecord) -> None:
        op.step = Step.SUBMITTING
        op.submitting_since = now_iso()
        self.save()  # before the call: a crash from here on is resolved by _recover
        try:
            if op.is_query:
                text = search_in_bulk_query(op.document, op.search)
                variables: dict[str, Any] = {"query": text}
                data = self.client.execute("bulk_operation_run_query", variables, idempotent=False)
                payload = data["bulkOperationRunQuery"]
            else:
                variables = {
                    "mutation": load_document(op.document),
                    "stagedUploadPath": op.staged_upload_path,
                    "clientIdentifier": f"bulkimg-{self.state.run_id}-{op.phase.value}",
                }
                data = self.client.execute(
                    "bulk_operation_run_mutation", variables, idempotent=False
                )
                payload = data["bulkOperationRunMutation"]
        except ShopifyUnreachableError:
            op.step, op.submitting_since = Step.UPLOADED, None  # it surely never started
            self.save()
            raise
        except (ShopifyNetworkError, ShopifyServerError):
            self._recover(op)  # it may have started: look for it before anything else
            return
        self._on_submitted(op, payload)

    def _on_submitted(self, op: OperationRecord, payload: dict[str, Any]) -> None:
        errors = payload.get("userErrors") or []
        codes = {str(e.get("code")) for e in errors}
        operation = BulkOperationNode.of(payload.get("bulkOperation"))
        if operation is not None and not errors:
            op.operation_id, op.status = operation.id, operation.status
            op.step = Step.SUBMITTED
        elif codes & BUSY_CODES:
            op.step = Step.UPLOADED  # the shop is busy: try again after the next poll
            self._busy = True
        elif codes & RESTAGE_CODES:
            op.step, op.staged_upload_path = Step.NEW, None
        else:
            op.step, op.rejected_errors = Step.REJECTED, [LineError.of(e) for e in errors]
            op.finished_at = now_iso()
        self.save()

    def _recover(self, op: OperationRecord) -> None:
        """Find an operation whose creation answer was lost, or submit again if none exists."""
        kind = "query" if op.is_query else "mutation"
        nodes = self.client.bulk_operations(f"operation_type:{kind}")
        started = datetime.fromisoformat(op.submitting_since or now_iso())
        since = started - RECOVERY_MARGIN
        known = {o.operation_id for o in self.state.operations if o.operation_id}
        found = [node for node in nodes if node.id not in known and node.created >= since]
        if found:
            oldest = min(found, key=lambda n: n.created)
            op.operation_id, op.status, op.step = oldest.id, oldest.status, Step.SUBMITTED
        elif (datetime.now(UTC) - started).total_seconds() >= self.policy.uncertain_wait:
            op.step = Step.UPLOADED  # it never started: submitting again is safe
        self.save()

    def _poll(self, op: OperationRecord) -> None:
        operation = self.client.bulk_operation(op.operation_id or "")
        if operation is None:
            raise ShopifyError(f"bulk operation {op.operation_id} not found on the shop")
        op.status = operation.status
        op.error_code = operation.error_code
        count = operation.object_count
        self.reporter.advance(self._stage_name(op), max(0, count - op.object_count))
        op.object_count = count
        if op.status in TERMINAL_STATUSES:
            op.step, op.finished_at = Step.FINISHED, now_iso()
            self.save()
            self._collect(op, operation)

    def _collect(self, op: OperationRecord, operation: BulkOperationNode | None = None) -> None:
        if operation is None:
            operation = self.client.bulk_operation(op.operation_id or "")
            assert operation is not None
            op.status = operation.status  # EXPIRED once its results are gone
        stem = f"{op.phase.value}-{_short_id(op.operation_id)}"
        for partial, attr, suffix in (
            (False, "result_file", "results"),
            (True, "partial_file", "partial"),
        ):
            url = operation.result_url(partial)
            if url:
                dest = self.results_dir / f"{stem}.{suffix}.jsonl"
                if self._download(op, partial, url, dest):
                    setattr(op, attr, str(dest))
        op.step = Step.COLLECTED
        self.save()

    def _download(self, op: OperationRecord, partial: bool, url: str, dest: Path) -> bool:
        """Download a result file; False when the shop no longer has it.

        A result URL dies 7 days after the operation ended (BulkOperation.url); asking again
        gives the same URL, or none once the operation is EXPIRED. Its lines then count as not
        run (retryable): the next submit resolves them against the shop, so nothing that did
        reach the shop is sent twice.
        """
        try:
            self.client.download(url, dest)
            return True
        except ResultUrlExpiredError:
            fresh = self.client.bulk_operation(op.operation_id or "")
        op.status = fresh.status if fresh else op.status
        again = fresh.result_url(partial) if fresh else None
        field = "partialDataUrl" if partial else "url"
        if again and again != url:
            try:
                self.client.download(again, dest)
                return True
            except ResultUrlExpiredError:
                pass
        self.reporter.info(
            f"the {field} of bulk operation {op.operation_id} has expired on the shop:"
            " its lines count as not run (retryable)"
        )
        op.status = "EXPIRED"
        return False


def _staging_error(error: dict[str, Any]) -> LineError:
    message = str(error.get("message") or "no staged upload target returned")
    return LineError.of(
        {"code": STAGED_UPLOAD_REFUSED, "field": error.get("field"), "message": message}
    )


def _short_id(gid: str | None) -> str:
    return (gid or "none").rsplit("/", 1)[-1]
