"""What `bulkimg status` and `bulkimg cancel` ask of a run and the shop: its live operations, the
next command to run, and setting aside a run.json that cannot be read."""

from __future__ import annotations

from pathlib import Path

from bulkimg.errors import BulkimgError, ConfigError
from bulkimg.formats.failures import read_failures
from bulkimg.formats.run import RunState, RunStore, Step, now_iso
from bulkimg.formats.submitted import submitted_by
from bulkimg.run.ledger import digest_of_build, productset_files_of_build
from bulkimg.shopify.client import ShopifyClient
from bulkimg.shopify.operation import BulkOperationNode


def live_status(client: ShopifyClient, state: RunState) -> dict[str, BulkOperationNode]:
    """The current state of the run's unfinished operations, by operation id."""
    live: dict[str, BulkOperationNode] = {}
    for op in state.operations:
        if op.operation_id and op.step is not Step.COLLECTED:
            node = client.bulk_operation(op.operation_id)
            if node is not None:
                live[op.operation_id] = node
    return live


def next_step(state: RunState, output_dir: Path) -> str:
    """What to run next, in one line, for the run in run.json (`bulkimg status`)."""
    if state.completed_at is None:
        if state.cancelled_at is not None:
            return "being cancelled: `bulkimg cancel` finishes stopping it"
        return "unfinished: `bulkimg submit --wait` resumes it; `bulkimg cancel` stops it"
    failures = output_dir / "failures.jsonl"
    if any(f.retryable for f in read_failures(failures)):
        return f"done with retryable failures: `bulkimg retry {failures}`"
    try:
        files = productset_files_of_build(output_dir)
    except BulkimgError:
        files = []
    current = digest_of_build(files)
    if current is not None and submitted_by(output_dir, current) is None:
        return "the current build is not submitted yet: `bulkimg submit --wait` sends it"
    return "nothing to do: `bulkimg build` (or the nightly `bulkimg run`) makes a new build"


def running_operations(client: ShopifyClient) -> list[BulkOperationNode]:
    """The shop's bulk operations that have not ended (any app's)."""
    found: list[BulkOperationNode] = []
    for status in ("created", "running", "canceling"):
        found.extend(client.bulk_operations(f"status:{status}"))
    return found


def set_aside_damaged(store: RunStore, client: ShopifyClient) -> Path:
    """A run.json that cannot be read, set aside once the shop runs no bulk operation (one of
    bulkimg's might still be changing products: a new run must not overlap it). ConfigError,
    naming the operations, while some run."""
    running = running_operations(client)
    if running:
        ids = ", ".join(o.id for o in running)
        raise ConfigError(
            f"{store.path} cannot be read and the shop still runs bulk operations ({ids}):"
            " wait until they end (`bulkimg status`), then run `bulkimg cancel` again"
        )
    aside = store.path.with_name(f"{store.path.name}.damaged-{now_iso().replace(':', '')}")
    store.path.replace(aside)
    return aside
