"""The nightly entry point: reconcile when needed, build, submit --wait, report — under a lock.

`bulkimg run --all` is safe to run unattended: a lock keeps two runs off one shop, a lost state
file is rebuilt from the shop before anything is sent, an unfinished submit is resumed, and a
night with no change sends nothing to Shopify and reads nothing from S3 but listings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bulkimg.config import Settings
from bulkimg.formats.manifest import MANIFEST_FILE, manifest_counts, read_manifest
from bulkimg.formats.nightly_report import SHOP_COUNTS, NightlyReport, write_nightly_report
from bulkimg.formats.resolution import read_resolution
from bulkimg.formats.run import Phase, RunState, RunStore, Step, now_iso
from bulkimg.formats.state import StateStore
from bulkimg.progress import NullReporter, Reporter
from bulkimg.run.build import BuildResult, run_build
from bulkimg.run.ledger import productset_files_of_build
from bulkimg.run.lock import writer_lock
from bulkimg.run.rotation import archive_run, prune_logs
from bulkimg.run.submit import EXPORT_DOCUMENT, Submission, SubmitOutcome
from bulkimg.shop.state import states_of_export
from bulkimg.shopify.bulkjob import BulkRunner, PollPolicy, new_record
from bulkimg.shopify.client import BulkOperationFailedError, ShopifyClient
from bulkimg.statuses import BulkOperationStatus

RECONCILE_RUN_FILE = "reconcile.json"


def export_shop(
    settings: Settings, client: ShopifyClient, run_file: str, reporter: Reporter | None = None
) -> Path | None:
    """A bulk export of the shop's products, media and variants (resumed from `run_file` in the
    output folder when a killed one is there); its result file, None for an empty shop."""
    client.reach()  # a wrong SHOPIFY_SHOP stops here, before anything is written
    store = RunStore(settings.output_dir, run_file)
    state = store.load() if store.exists() else None
    if state is None or state.completed_at is not None:
        state = RunState(shop=client.endpoint.base_url)
        state.operations = [new_record(Phase.EXPORT, Path(), EXPORT_DOCUMENT)]
        store.save(state)
    policy = PollPolicy(
        concurrency=settings.bulk_concurrency,
        interval=settings.poll_interval,
        max_interval=settings.poll_max_interval,
        uncertain_wait=settings.submit_recovery_seconds,
    )
    runner = BulkRunner(client, store, state, settings.output_dir / "results", policy, reporter)
    runner.run(Phase.EXPORT, True)
    export = state.ops(Phase.EXPORT)[-1]
    if export.step is Step.REJECTED or export.status != BulkOperationStatus.COMPLETED:
        raise BulkOperationFailedError(
            f"the product export ended {export.status or export.step.value}"
        )
    state.completed_at = now_iso()
    store.save(state)
    return Path(export.result_file) if export.result_file else None


def reconcile(
    settings: Settings, client: ShopifyClient, reporter: Reporter | None = None
) -> dict[str, int]:
    """Rebuild the state file from a bulk export of the shop's products, media and variants."""
    export = export_shop(settings, client, RECONCILE_RUN_FILE, reporter)
    with StateStore(settings.state_file, client.endpoint.base_url) as shop_state:
        return shop_state.replace_all(states_of_export(export) if export else [])


@dataclass(slots=True)
class NightlyRun:
    """What one `bulkimg run` did."""

    reconciled: dict[str, int] | None
    build: BuildResult | None
    submit: SubmitOutcome
    exit_code: int
    report: NightlyReport


def run_nightly(
    settings: Settings,
    client: ShopifyClient,
    group_ids: Sequence[str] | None = None,
    reporter: Reporter | None = None,
    canary: int | None = None,
) -> NightlyRun:
    """reconcile (if the state file is missing) → build → submit --wait → report.

    With `canary`, the submit sends that many products first and goes on with the rest only when
    they changed in their images only (shop/canary.py); otherwise it stops there.
    """
    reporter = reporter or NullReporter()
    with writer_lock(settings, "run"):
        client.reach()  # a wrong SHOPIFY_SHOP stops here, not after the build
        submission = Submission(settings, client, reporter)
        reconciled = None
        build = None
        unfinished = submission.unfinished()
        if unfinished is not None:
            reporter.info("resuming the unfinished submit in run.json")
            state = unfinished
        else:
            if not settings.state_file.is_file():
                reporter.info("no state file: rebuilding it from the shop first")
                reconciled = reconcile(settings, client, reporter)
            build = run_build(settings, group_ids, reporter)
            submission = Submission(settings, client, reporter, limit=canary)
            state = submission.start(productset_files_of_build(settings.output_dir))
        outcome = submission.run(state, wait=True)
        if state.limit is not None and outcome.canary == [] and outcome.exit_code == 0:
            reporter.info(f"canary: {len(state.canary)} products changed only their images")
            submission = Submission(settings, client, reporter)
            state = submission.start(productset_files_of_build(settings.output_dir))
            outcome = submission.run(state, wait=True)
        exit_code = max(outcome.exit_code, 1 if build and build.report.groups_deferred else 0)
        report = write_report(settings, build, outcome, reconciled)
        archive_run(settings.output_dir, state.run_id, settings.keep_runs)
        prune_logs(settings.logs_dir, settings.keep_runs)
    return NightlyRun(reconciled, build, outcome, exit_code, report)


def write_report(
    settings: Settings,
    build: BuildResult | None,
    outcome: SubmitOutcome,
    reconciled: dict[str, int] | None,
) -> NightlyReport:
    """output/report.json (the spec's metrics) and output/report.md (what changed)."""
    b = build.report if build else None
    groups = b.groups if b else 0
    uploaded = _uploaded(settings.output_dir)
    manifest = read_manifest(settings.output_dir / MANIFEST_FILE)
    ready = sum(1 for entry in manifest for m in entry.media
                if m.status == "READY" and m.s3_key in uploaded)  # fmt: skip
    candidates = (b.cache_hits + b.images_probed) if b else 0
    report = NightlyReport(
        completed_at=now_iso(),
        reconciled=reconciled,
        groups=groups,
        groups_unchanged=b.groups_unchanged if b else 0,
        groups_sent=b.groups_written if b else 0,
        outcome=manifest_counts(outcome.manifest) if outcome.manifest else {},
        bulk_operations=len([op for op in outcome.operations if op.operation_id]),
        shopify_calls=client_calls(outcome),
        s3_requests=b.s3_requests if b else {},
        s3_calls_per_group=round(sum(b.s3_requests.values()) / groups, 3) if b and groups else 0,
        images_fetched=b.images_probed if b else 0,
        images_uploaded=len(uploaded),
        **{key: int(outcome.counts.get(key, 0)) for key in SHOP_COUNTS},
        upload_success_rate=round(ready / len(uploaded), 4) if uploaded else 1.0,
        seconds_per_image_sku=b.seconds_per_image_sku if b else 0.0,
        cache_hit_rate=round(b.cache_hits / candidates, 4) if b and candidates else 0.0,
        missing_occurrences=sum(b.variants_missing_images.values()) if b else 0,
        failures=outcome.counts.get("failed", 0),
        exit_code=outcome.exit_code,
    )
    write_nightly_report(settings.output_dir, report)
    return report


def client_calls(outcome: SubmitOutcome) -> int:
    return int(outcome.counts.get("shopify_calls", 0))


def _uploaded(out: Path) -> set[str]:
    """S3 keys this run uploaded (new or replacing a copy), from its resolution against the shop."""
    store = RunStore(out)
    state = store.load() if store.exists() else None
    if state is None or not state.resolution_file or not Path(state.resolution_file).is_file():
        return set()
    return {key for group in read_resolution(Path(state.resolution_file)) for key in group.uploads}
