"""`bulkimg submit`: one run's phases in order, resumable from output/run.json.

A bulk export of the shop's products first; the build's lines are resolved against it
(shop/resolve.py: productSet for a product bulkimg creates, productUpdate appending images and
fileDelete of bulkimg's own copies for one that exists). Phase 1 runs those files as bulk
mutations. A bulk query export then reads the products back (media ids and status, variant ids),
waiting a bounded time for media to become READY. Phase 2 (run/phase2.py: detach, attach,
reorder) runs from it. Every step is saved in output/run.json first, so a killed submit resumes;
the outcome (run/outcome.py) is written to output/manifest.jsonl, output/failures.jsonl and
logs/image_upload_failures_*.log.

The export rounds (`_export_until_ready`) and the resolve exports (`_resolve`) stay loops, not
tenacity: each round appends an OperationRecord and saves run.json, merges its export into what
earlier rounds found, and ends in one of several ways (the media are READY, the wait is over,
phase 2 is done, too many failed exports); the sleep sits between the decision and the new
record. A tenacity Retrying would need all of that as state shared with a callback and the
result threaded back out, for the one thing it adds: the growing interval. The bulk operations
themselves are polled with tenacity (BulkRunner.run).
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkimg.config import Settings
from bulkimg.errors import ConfigError, InputFileError
from bulkimg.formats.failures import (
    FAILURES_FILE,
    FailureRecord,
    LineError,
    write_failures,
)
from bulkimg.formats.lines import (
    MoveInput,
    Phase2Variables,
    ReorderMediaLine,
    VariantMediaLine,
    write_lines,
)
from bulkimg.formats.logs import UPLOAD_FAILURES, log_file_name, upload_failure_lines
from bulkimg.formats.manifest import (
    MANIFEST_FILE,
    ManifestRecord,
    merged_manifest,
    write_manifest,
)
from bulkimg.formats.plan import PlanRecord, read_plan
from bulkimg.formats.resolution import ResolvedGroup, read_resolution
from bulkimg.formats.run import OperationRecord, Phase, RunState, RunStore, Step, now_iso
from bulkimg.formats.state import StateStore
from bulkimg.progress import NullReporter, Reporter
from bulkimg.run.ledger import record_submission, signing_settings
from bulkimg.run.outcome import (
    canary_failure,
    group_outcome,
    record_state,
    shop_counts,
    unchanged_outcome,
)
from bulkimg.run.phase2 import (
    REORDER_DOCUMENT,
    VARIANT_DETACH_DOCUMENT,
    VARIANT_MEDIA_DOCUMENT,
    Phase2Line,
    VariantImage,
    detached_pairs,
    media_by_key,
    phase2_lines,
    phase2_product_id,
    pick_products,
    product_id_of,
    variant_media_lines,
    wanted_pairs,
)
from bulkimg.s3.client import make_s3_client
from bulkimg.s3.presign import LinkLifetime, link_lifetime, presigner
from bulkimg.shop.canary import canary_problems
from bulkimg.shop.resolve import (
    APPEND,
    CREATE,
    DELETE,
    Relinker,
    ResolveRules,
    hold_back,
    resolve_run,
)
from bulkimg.shopify.bulkjob import BulkRunner, PollPolicy, new_record, sha256_of
from bulkimg.shopify.client import ShopifyClient, ShopifyError
from bulkimg.shopify.results import (
    ExportedProduct,
    LineResult,
    read_export,
    read_line_results,
)
from bulkimg.statuses import FAILED_STATUSES, BulkOperationStatus, MediaStatus

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

EXPORT_DOCUMENT = "export_products"
NOT_STARTED = LineError(code="NOT_RUN", message="not started: the run was cancelled")
MAX_FAILED_EXPORTS = 3  # product exports that may fail before the run goes on without one
# While images process, the products still waiting are exported again by id (`id:1 OR id:2 …`);
# past this many, one export of every product is the smaller query.
MAX_SEARCHED_PRODUCTS = 250


@dataclass(slots=True)
class SubmitOutcome:
    """What a submit did; exit_code follows the documented codes."""

    finished: bool
    exit_code: int
    counts: dict[str, int] = field(default_factory=dict)
    operations: list[OperationRecord] = field(default_factory=list)
    manifest: Path | None = None
    failures: Path | None = None
    failure_log: Path | None = None
    canary: list[str] | None = None  # with --limit: what changed beyond images ([]: nothing)
    links_expiry: str | None = None  # when the URLs this run sent expire (None: none signed)


class Submission:
    """One submit (or resumed submit) of the build in settings.output_dir."""

    def __init__(
        self,
        settings: Settings,
        client: ShopifyClient,
        reporter: Reporter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        plan_path: Path | None = None,
        limit: int | None = None,
        s3: S3Client | None = None,
    ) -> None:
        self.limit = limit
        self._s3 = s3  # signs the URLs of the lines sent (default: a client from settings)
        self.links: LinkLifetime | None = None
        self._resolved: dict[str, ResolvedGroup] = {}
        self._resolved_from: str | None = None
        self.settings = settings
        self.client = client
        self.reporter: Reporter = reporter or NullReporter()
        self.sleep = sleep
        self.out = settings.output_dir
        self.store = RunStore(self.out)
        self.plan_path = plan_path or self.out / "plan.jsonl"
        self.policy = PollPolicy(
            concurrency=settings.bulk_concurrency,
            interval=settings.poll_interval,
            max_interval=settings.poll_max_interval,
            uncertain_wait=settings.submit_recovery_seconds,
        )

    # -- run ---------------------------------------------------------------------------------

    def start(self, productset_files: list[Path], **fields: Any) -> RunState:
        """A new run over `productset_files` (refused while another run is unfinished).

        Nothing but one `shop` query (the address answers) happens before the shop is checked
        against the state file's. The run
        keeps its own copy of the plan, so a build made while it is unfinished cannot change
        what it reports."""
        self.client.reach()  # a wrong SHOPIFY_SHOP stops here, before anything is written
        self._check_state_shop()
        if self.store.exists():
            previous = self.store.load()
            if previous.completed_at is None:
                raise InputFileError(
                    f"{self.store.path} holds an unfinished run ({previous.run_id}):"
                    " run `bulkimg submit --wait` to resume it, or `bulkimg status`"
                )
        run_id = uuid.uuid4().hex[:12]
        plan_copy = self.out / f"run-plan-{run_id}.jsonl"
        if self.plan_path.is_file():
            shutil.copyfile(self.plan_path, plan_copy)
        state = RunState(
            run_id=run_id,
            shop=self.client.endpoint.base_url,
            plan_file=str(plan_copy if self.plan_path.is_file() else self.plan_path),
            source_files=[str(p) for p in productset_files],
            source_sha256=[sha256_of(p) for p in productset_files],
            resolved=not productset_files,
            limit=self.limit,
            replace_variant_images=self.settings.replace_variant_images,
            **fields,
        )
        if productset_files:  # the lines are resolved against the shop as it is now
            state.operations = [new_record(Phase.RESOLVE, Path(), EXPORT_DOCUMENT)]
        self.store.save(state)
        record_submission(self.out, state)
        return state

    def unfinished(self) -> RunState | None:
        """The unfinished run in run.json, to resume; None when there is none.

        A run whose build changed before it sent anything (it had only exported the shop, a
        read-only query) is closed as abandoned: resuming it would fail on its changed files,
        and the new build is what should be sent. A run for another shop is refused."""
        if not self.store.exists():
            return None
        state = self.store.load()
        if state.completed_at is not None:
            return None
        if state.shop != self.client.endpoint.base_url:
            raise ConfigError(
                f"{self.store.path} holds an unfinished run on {state.shop}, not on"
                f" {self.client.endpoint.base_url}: set SHOPIFY_SHOP to that shop to finish it,"
                " or use another --output-dir"
            )
        self._check_state_shop()
        if not state.resolved and _sources_changed(state):
            state.abandoned = "the build changed before any line was sent"
            state.completed_at = now_iso()
            self.store.save(state)
            self.reporter.info(f"run {state.run_id} sent nothing and its build changed: closed")
            return None
        return state

    def _check_state_shop(self) -> None:
        """ConfigError, before anything remote, when the state file belongs to another shop."""
        StateStore(self.settings.state_file, self.client.endpoint.base_url).close()

    def resume_or_start(self, productset_files: list[Path]) -> RunState:
        """The unfinished run in run.json, or a new run over `productset_files`."""
        state = self.unfinished()
        if state is not None:
            self.reporter.info(f"resuming run {state.run_id}")
            return state
        return self.start(productset_files)

    def cancel(self, state: RunState) -> list[str]:
        """Stop the run (`bulkimg cancel`): operations not started never start (their lines
        fail NOT_RUN, retryable) and the running ones are asked to stop (bulkOperationCancel).
        Saved first, so a cancel killed half way is finished by the next command. Returns the
        ids of the operations asked to stop; `run` then waits for them and writes the outcome."""
        state.cancelled_at = state.cancelled_at or now_iso()
        self.store.save(state)
        stopping: list[str] = []
        for op in state.operations:
            if op.step in (Step.NEW, Step.UPLOADED):
                op.step = Step.REJECTED
                op.rejected_errors = [NOT_STARTED]
            elif op.step is Step.SUBMITTED and op.operation_id:
                self.client.cancel_bulk_operation(op.operation_id)
                stopping.append(op.operation_id)
        self.store.save(state)
        return stopping

    def run(self, state: RunState, wait: bool) -> SubmitOutcome:
        runner = BulkRunner(
            self.client, self.store, state, self.out / "results", self.policy, self.reporter,
            self.sleep,
        )  # fmt: skip
        if state.cancelled_at is not None:
            return self._finish_cancelled(runner, state)
        if not state.resolved:
            relinker = self._relinker()  # before anything is sent: may refuse
            self._resolve(runner, state, relinker)
        phase1 = runner.run(Phase.PRODUCT_SET, wait)
        if not all(op.step in (Step.COLLECTED, Step.REJECTED) for op in phase1):
            return SubmitOutcome(
                False, 0, operations=state.operations, links_expiry=self._links_note()
            )
        resolved = self._resolution(state)
        groups = self._run_groups(state)
        phase1_results = self._phase1_results(state, groups)
        done = [g for g in groups.values() if _ok(phase1_results.get(g.group_id))]
        done_ids = {g.group_id for g in done}
        # Every product a line was sent for, failed lines too: one whose result was lost (its
        # operation failed or was cancelled) may exist, and the state file must learn its
        # images so that no later run uploads them again.
        targets = {
            g.handle: product_id_of(resolved.get(g.group_id), phase1_results.get(g.group_id))
            for g in groups.values()
            if g.group_id in done_ids or _reached_shop(phase1_results.get(g.group_id))
        }
        products = self._export_until_ready(runner, state, targets)
        if not state.detach_written and not state.phase2_done:
            detach = self._write_lines(state, "variant_detach", VARIANT_DETACH_DOCUMENT,
                                       self._detach_lines(state, done, products))  # fmt: skip
            state.operations.extend(new_record(Phase.VARIANT_DETACH, *d) for d in detach)
            state.detach_written = True
            self.store.save(state)
        runner.run(Phase.VARIANT_DETACH, True)
        if not state.ops(Phase.VARIANT_MEDIA) and not state.phase2_done:
            for path, document in self._write_phase2(state, done, products):
                state.operations.append(new_record(Phase.VARIANT_MEDIA, path, document))
            state.phase2_done = True
            self.store.save(state)
        runner.run(Phase.VARIANT_MEDIA, True)
        return self._finish(state, groups, phase1_results, products)

    def _finish_cancelled(self, runner: BulkRunner, state: RunState) -> SubmitOutcome:
        """A cancelled run: its operations polled to their end and their results collected; no
        new phase. Lines that ran are done or failed as their results say; the others, and the
        variant images of its products, are retryable failures."""
        for phase in Phase:
            runner.run(phase, True)
        if not state.resolved:  # cancelled before a line was written: nothing was sent
            state.abandoned, state.completed_at = "cancelled before any line was sent", now_iso()
            self.store.save(state)
            return SubmitOutcome(True, 0, {"groups": 0}, state.operations)
        groups = self._run_groups(state)
        return self._finish(state, groups, self._phase1_results(state, groups), {})

    # -- resolve against the shop ------------------------------------------------------------

    def _links_note(self) -> str | None:
        return self.links.describe() if self.links is not None else None

    def _relinker(self) -> Relinker:
        """Signs the image URLs of every line sent again, with fresh credentials (refreshed when
        they would expire within BULKIMG_SUBMIT_LINK_SECONDS), for as long as they last; raises
        ConfigError when they would not last that long. Without S3 settings the build's URLs
        are checked instead."""
        settings, now = self.settings, datetime.now(UTC)
        need = settings.submit_link_seconds
        bucket = settings.aws_s3_bucket
        if not bucket:
            return Relinker(None, now + timedelta(seconds=need))
        client = self._s3 or make_s3_client(signing_settings(settings))
        lifetime = link_lifetime(client, settings.presign_seconds, now, at_least=need)
        if lifetime.seconds < need:
            why = (
                "BULKIMG_PRESIGN_SECONDS is below BULKIMG_SUBMIT_LINK_SECONDS"
                if lifetime.limited_by == "setting"
                else "refresh the S3 credentials (or let the role's session last longer)"
            )
            raise ConfigError(
                f"the presigned URLs submit would send expire at {lifetime.describe()}, less"
                f" than BULKIMG_SUBMIT_LINK_SECONDS ({need} s) from now, before Shopify could"
                f" fetch the images: {why}; nothing was sent"
            )
        self.links = lifetime
        presign = presigner(client, bucket, lifetime.seconds, clock=lambda: now)
        return Relinker(presign, now + timedelta(seconds=need))

    def _resolve(self, runner: BulkRunner, state: RunState, relinker: Relinker) -> None:
        """Export the shop's products, then write phase 1's lines from the build's
        (shop/resolve.py)."""
        if _sources_changed(state):  # closed by unfinished() before it gets here
            raise InputFileError(
                "the build changed since this run started: run `bulkimg submit --wait` again"
            )
        while True:
            runner.run(Phase.RESOLVE, True)
            exports = state.ops(Phase.RESOLVE)
            last = exports[-1]
            if last.status == BulkOperationStatus.COMPLETED and last.step is Step.COLLECTED:
                break
            if len(exports) >= MAX_FAILED_EXPORTS:
                raise ShopifyError(
                    "could not export the shop's products"
                    f" ({last.status or last.step.value}): nothing was sent"
                )
            state.operations.append(new_record(Phase.RESOLVE, Path(), EXPORT_DOCUMENT))
            self.store.save(state)
        export = Path(last.result_file) if last.result_file else None
        rules = ResolveRules(
            self.settings.create_products, self.settings.create_status, state.replace_variant_images
        )
        files, resolution = resolve_run(
            Path(state.plan_file or self.plan_path),
            [Path(p) for p in state.source_files],
            export,
            self.out,
            state.run_id,
            rules,
            relinker,
        )
        if state.limit is not None:
            files, state.canary = hold_back(files, resolution, state.limit)
        state.operations.extend(
            new_record(Phase.PRODUCT_SET, path, document) for path, document in files
        )
        state.resolution_file, state.resolved = str(resolution), True
        self.store.save(state)

    def _resolution(self, state: RunState) -> dict[str, ResolvedGroup]:
        """The run's resolution by group, read once (written once, before phase 1)."""
        if not state.resolution_file:
            return {}
        if self._resolved_from != state.resolution_file:
            path = Path(state.resolution_file)
            self._resolved = {g.group_id: g for g in read_resolution(path)}
            self._resolved_from = state.resolution_file
        return self._resolved

    # -- phase 1 -----------------------------------------------------------------------------

    def _groups(self, state: RunState) -> dict[str, PlanRecord]:
        return {r.group_id: r for r in read_plan(Path(state.plan_file or self.plan_path))}

    def _run_groups(self, state: RunState) -> dict[str, PlanRecord]:
        """The plan's groups this run answers for: all but those a canary held back."""
        resolved = self._resolution(state)
        return {
            group_id: group
            for group_id, group in self._groups(state).items()
            if group_id not in resolved or resolved[group_id].action != "held"
        }

    def _phase1_results(
        self, state: RunState, groups: dict[str, PlanRecord]
    ) -> dict[str, tuple[OperationRecord | None, LineResult]]:
        results: dict[str, tuple[OperationRecord | None, LineResult]] = {
            group_id: (None, LineResult(-1, ran=True)) for group_id in state.phase1_skipped
        }
        by_line: dict[tuple[str, int], str] = {}
        for resolved in self._resolution(state).values():
            for ref in resolved.lines:
                by_line[(ref.file, ref.line)] = resolved.group_id
            if resolved.lines:
                continue
            if resolved.action == "unchanged":  # the shop already holds its images
                done = LineResult(-1, ran=True, product_id=resolved.product_id)
                results[resolved.group_id] = (None, done)
            elif resolved.action in ("conflict", "not_created"):  # reported, never guessed
                code = "IDENTITY_CONFLICT" if resolved.action == "conflict" else "NOT_CREATED"
                error = LineError(code=code, message=resolved.detail)
                results[resolved.group_id] = (None, LineResult(-1, errors=[error]))
        # A group with several lines (new images, copies deleted) is done when all of them are;
        # the first that failed is its failure.
        for op, result in phase1_line_results(state):
            group_id = by_line.get((Path(op.input_file).name, result.line + 1))
            if group_id not in groups:
                continue
            known = results.get(group_id)
            if known is None or known[0] is None or (known[1].ok and not result.ok):
                results[group_id] = (op, result)
        return results

    # -- export and media wait ---------------------------------------------------------------

    def _export_until_ready(
        self, runner: BulkRunner, state: RunState, targets: dict[str, str | None]
    ) -> dict[str, ExportedProduct]:
        """The run's products by plan handle (`targets`: plan handle -> product id, or None for a
        product created by its handle), exported until their media are READY or the wait ends."""
        if not targets:
            return {}
        if state.media_wait_until is None:
            until = datetime.now(UTC) + timedelta(seconds=self.settings.media_wait_seconds)
            state.media_wait_until = until.isoformat(timespec="seconds")
        rounds = 0  # waits so far: each is longer (PollPolicy.interval_after)
        if not state.ops(Phase.EXPORT):
            state.operations.append(new_record(Phase.EXPORT, Path(), EXPORT_DOCUMENT))
            self.store.save(state)
        products: dict[str, ExportedProduct] = {}
        merged = 0  # exports merged into `products`: a later one replaces what it holds
        while True:
            runner.run(Phase.EXPORT, True)
            exports = state.ops(Phase.EXPORT)
            for op in exports[merged:]:
                if op.status == BulkOperationStatus.COMPLETED and op.result_file:
                    products.update(pick_products(read_export(Path(op.result_file)), targets))
            merged = len(exports)
            last = exports[-1]
            failed = sum(1 for op in exports if op.status in FAILED_STATUSES)
            search = last.search
            if last.status in FAILED_STATUSES and failed < MAX_FAILED_EXPORTS:
                pass  # a query changes nothing: run it again rather than lose the products
            elif last.step is Step.REJECTED or last.status in FAILED_STATUSES:
                return products
            else:
                images, waiting = _pending_media(products)
                if state.phase2_done or state.detach_written or not images:
                    return products
                if _past(state.media_wait_until):
                    return products
                search = _search_of(products)
                self.reporter.info(
                    f"waiting for {images} images still processing on {waiting} products"
                    f" (until {state.media_wait_until}); then export #{len(exports) + 1}"
                    + (" of those products" if search else " of every product")
                )
            self.sleep(self.policy.interval_after(rounds))
            rounds += 1
            state.operations.append(new_record(Phase.EXPORT, Path(), EXPORT_DOCUMENT, search))
            self.store.save(state)

    # -- phase 2 -----------------------------------------------------------------------------

    def _detach_lines(
        self, state: RunState, done: list[PlanRecord], products: dict[str, ExportedProduct]
    ) -> list[VariantMediaLine]:
        """Phase 2's first lines: the images of variants that get another one, detached
        (shop/variantimages.py says which)."""
        lines: list[VariantMediaLine] = []
        for _, product, _, wanted in self._variant_images(state, done, products):
            pairs = [(p.variant_id, p.detach) for p in wanted if p.detach]
            lines.extend(variant_media_lines(product.id, pairs))
        return lines

    def _variant_images(
        self, state: RunState, done: list[PlanRecord], products: dict[str, ExportedProduct]
    ) -> Iterator[tuple[PlanRecord, ExportedProduct, ResolvedGroup | None, list[VariantImage]]]:
        """Each group done in phase 1 whose product was exported, with its variant images."""
        resolved = self._resolution(state)
        for group in sorted(done, key=lambda g: g.group_id):
            product = products.get(group.handle)
            if product is not None:
                known = resolved.get(group.group_id)
                wanted = wanted_pairs(group, product, known, state.replace_variant_images)
                yield group, product, known, wanted

    def _write_lines(
        self, state: RunState, name: str, document: str, lines: Sequence[Phase2Variables]
    ) -> list[tuple[Path, str]]:
        if not lines:
            return []
        path = self.out / f"{name}-{state.run_id}.jsonl"
        write_lines(path, lines)
        return [(path, document)]

    def _write_phase2(
        self,
        state: RunState,
        done: list[PlanRecord],
        products: dict[str, ExportedProduct],
    ) -> list[tuple[Path, str]]:
        """Phase 2's files: variant images to attach (to variants that show none, or whose
        image was detached), and bulkimg's images put first again (in plan order, the first
        the featured one) on products it appended images to."""
        attach: list[VariantMediaLine] = []
        reorder: list[ReorderMediaLine] = []
        detached = detached_pairs(state)
        for group, product, known, wanted in self._variant_images(state, done, products):
            pairs = [
                (p.variant_id, p.media_id)
                for p in wanted
                if p.detach is None or (p.variant_id, p.detach) in detached
            ]
            attach.extend(variant_media_lines(product.id, pairs))
            if known is not None and known.action == "update" and known.uploads:
                media = media_by_key(group, product, known)
                moves = [media[m.s3_key].id for m in group.media if m.s3_key in media]
                reorder.append(
                    ReorderMediaLine(
                        id=product.id,
                        moves=[MoveInput(id=m, new_position=str(i)) for i, m in enumerate(moves)],
                    )
                )
        return self._write_lines(
            state, "variant_media", VARIANT_MEDIA_DOCUMENT, attach
        ) + self._write_lines(state, "reorder_media", REORDER_DOCUMENT, reorder)

    # -- outcome -----------------------------------------------------------------------------

    def _finish(
        self,
        state: RunState,
        groups: dict[str, PlanRecord],
        phase1: dict[str, tuple[OperationRecord | None, LineResult]],
        products: dict[str, ExportedProduct],
    ) -> SubmitOutcome:
        phase2 = self._phase2_results(state, products)
        failures: list[FailureRecord] = []
        manifest: list[ManifestRecord] = []
        counts = {"groups": len(groups), "done": 0, "failed": 0, "missing": 0, "unchanged": 0}
        resolved = self._resolution(state)
        checked = state.limit is not None and state.cancelled_at is None
        canary = self._canary(state, groups, resolved) if checked else None
        with StateStore(self.settings.state_file, self.client.endpoint.base_url) as shop_state:
            for group_id in sorted(groups):
                group = groups[group_id]
                group_failures: list[FailureRecord] = []
                if group.status == "unchanged":
                    entry = unchanged_outcome(group, shop_state)
                    counts["unchanged"] += 1
                else:
                    entry, group_failures = group_outcome(
                        group, phase1.get(group_id), products, phase2, resolved.get(group_id)
                    )
                if group_id in resolved:
                    entry = entry.model_copy(update={"action": resolved[group_id].action})
                for problem in (canary or {}).get(group_id, []):
                    group_failures.append(canary_failure(group, problem))
                    entry = entry.model_copy(update={"status": "failed"})
                manifest.append(entry)
                failures.extend(group_failures)
                counts[entry.status] += 1
            record_state(shop_state, groups, products, manifest)
        submitted = sum(op.input_lines for op in state.ops(Phase.PRODUCT_SET))
        sent = [r for _, r in phase1_line_results(state)]
        p1_failed = sum(1 for r in sent if not r.ok)
        p1_done = sum(1 for r in sent if r.ok)
        if p1_done + p1_failed != submitted:  # every input line is accounted for
            raise AssertionError(f"lines: {p1_done} done + {p1_failed} failed != {submitted}")
        counts.update(lines_submitted=submitted, lines_done=p1_done, lines_failed=p1_failed)
        counts["variant_media_lines"] = sum(op.input_lines for op in state.ops(Phase.VARIANT_MEDIA))
        counts.update(shop_counts(resolved.values()))

        counts["shopify_calls"] = self.client.calls
        paths = self._write_outcome(state, manifest, failures)
        state.completed_at = now_iso()
        self.store.save(state)
        # Failed exports that a later one replaced (a query changes nothing: it is run again).
        superseded = {
            id(op) for phase in (Phase.RESOLVE, Phase.EXPORT) for op in state.ops(phase)[:-1]
        }
        broken = any(
            (op.status in FAILED_STATUSES or op.step is Step.REJECTED) and id(op) not in superseded
            for op in state.operations
        )
        exit_code = 3 if broken else (1 if failures else 0)
        problems = [p for found in (canary or {}).values() for p in found]
        outcome = SubmitOutcome(True, exit_code, counts, state.operations, *paths)
        outcome.links_expiry = self._links_note()
        outcome.canary = problems if canary is not None else None
        return outcome

    def _canary(
        self, state: RunState, groups: dict[str, PlanRecord], resolved: dict[str, ResolvedGroup]
    ) -> dict[str, list[str]]:
        """What each canary product changed beyond its images (see shop/canary.py)."""
        before = state.ops(Phase.RESOLVE)[-1].result_file
        after = [
            Path(op.result_file)
            for op in state.ops(Phase.EXPORT)
            if op.status == BulkOperationStatus.COMPLETED and op.result_file
        ]
        checked = [
            (groups[g], str(resolved[g].product_id))
            for g in state.canary
            if g in groups and g in resolved and resolved[g].action == "update"
        ]  # created products, or groups that sent nothing, have nothing to compare
        if not checked:
            return {}
        if not before or not after:
            unproven = ["no export before and after the canary: nothing is proven"]
            return {plan.group_id: unproven for plan, _ in checked}
        return canary_problems(Path(before), after, checked)

    def _phase2_results(
        self, state: RunState, products: dict[str, ExportedProduct]
    ) -> dict[str, list[Phase2Line]]:
        """Phase 2 results by product id: (input variables, result, file, 1-based line)."""
        out: dict[str, list[Phase2Line]] = {}
        for entry in phase2_lines(state, Phase.VARIANT_DETACH, Phase.VARIANT_MEDIA):
            out.setdefault(phase2_product_id(entry.variables), []).append(entry)
        return out

    def _write_outcome(
        self, state: RunState, manifest: list[ManifestRecord], failures: list[FailureRecord]
    ) -> tuple[Path, Path, Path]:
        started = datetime.fromisoformat(state.created_at).astimezone()
        manifest_path = self.out / MANIFEST_FILE
        failures_path = self.out / FAILURES_FILE
        log_path = self.settings.logs_dir / log_file_name(UPLOAD_FAILURES, started)
        records = failures
        if state.merge_manifest:
            manifest = merged_manifest(manifest_path, manifest)
            records = state.carried_failures + records
        write_manifest(manifest_path, manifest)
        write_failures(failures_path, records)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("w", encoding="utf-8") as log:
            for line in upload_failure_lines(manifest, failures):
                log.write(line)
        return manifest_path, failures_path, log_path


def _sources_changed(state: RunState) -> bool:
    return any(
        not Path(source).is_file() or sha256_of(Path(source)) != digest
        for source, digest in zip(state.source_files, state.source_sha256, strict=True)
    )


def _ok(entry: tuple[OperationRecord | None, LineResult] | None) -> bool:
    return entry is not None and entry[1].ok


def _reached_shop(entry: tuple[OperationRecord | None, LineResult] | None) -> bool:
    """The line was in a file that a bulk operation started on (whatever became of it)."""
    return entry is not None and entry[0] is not None and entry[0].operation_id is not None


def _past(iso: str | None) -> bool:
    return iso is not None and datetime.now(UTC) >= datetime.fromisoformat(iso)


def _pending(product: ExportedProduct) -> int:
    """Its images Shopify is still processing."""
    return sum(
        1 for m in product.media if m.status in (MediaStatus.UPLOADED, MediaStatus.PROCESSING)
    )


def _pending_media(products: dict[str, ExportedProduct]) -> tuple[int, int]:
    """(images still processing, products they are on)."""
    pending = [_pending(p) for p in products.values()]
    return sum(pending), sum(1 for n in pending if n)


def _search_of(products: dict[str, ExportedProduct]) -> str | None:
    """The search that exports only the products still processing images (`id:1 OR id:2`), or
    None (every product) when there are more than MAX_SEARCHED_PRODUCTS of them."""
    waiting = sorted(p.id.rsplit("/", 1)[-1] for p in products.values() if _pending(p))
    if not waiting or len(waiting) > MAX_SEARCHED_PRODUCTS:
        return None
    return " OR ".join(f"id:{number}" for number in waiting)


# The payload field of each document phase 1 may run.
PAYLOAD_FIELDS = {CREATE: "productSet", APPEND: "productUpdate", DELETE: "fileDelete"}


def phase1_line_results(state: RunState) -> Iterator[tuple[OperationRecord, LineResult]]:
    """Every input line of phase 1 with its result, whatever document its file runs."""
    for op in state.ops(Phase.PRODUCT_SET):
        for result in read_line_results(op, PAYLOAD_FIELDS[op.document]).values():
            yield op, result
