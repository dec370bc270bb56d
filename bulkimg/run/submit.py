"""`bulkimg submit`: run the build's productSet lines in bulk, then attach variant images.

Phase 1 runs every productset file as a bulk mutation. A bulk query export then reads the
products back (media ids and status, variant ids), waiting a bounded time for media to become
READY. Phase 2 runs productVariantAppendMedia lines built from it. Every step is saved in
output/run.json first, so a killed submit resumes; the outcome is written to
output/manifest.jsonl, output/failures.jsonl and logs/image_upload_failures_*.log.
"""

from __future__ import annotations

import hashlib
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from bulkimg.config import Settings
from bulkimg.errors import BulkimgError, ConfigError, InputFileError
from bulkimg.formats.failures import (
    FAILURES_FILE,
    FailureRecord,
    failure_of,
    read_failures,
    write_failures,
)
from bulkimg.formats.jsonl import iter_jsonl, write_lines
from bulkimg.formats.logs import log_file_name, upload_failure_lines
from bulkimg.formats.manifest import (
    MANIFEST_FILE,
    GroupStatus,
    ManifestMedia,
    ManifestRecord,
    ManifestVariant,
    merged_manifest,
    write_manifest,
)
from bulkimg.formats.plan import PlanRecord, PlanVariant, read_plan
from bulkimg.formats.run import OperationRecord, Phase, RunState, RunStore, Step, now_iso
from bulkimg.formats.submitted import SubmittedRecord, append_submitted, submitted_by
from bulkimg.plan.names import filename_of_url, shopify_filename
from bulkimg.progress import NullReporter, Reporter
from bulkimg.redact import redact_url
from bulkimg.run.statestore import ProductState, StateStore, product_state
from bulkimg.s3.client import make_s3_client, signing_settings
from bulkimg.s3.presign import LinkLifetime, link_lifetime, presigner
from bulkimg.shop.adoption import base_name, s3_filename
from bulkimg.shop.canary import canary_problems
from bulkimg.shop.resolve import (
    APPEND,
    CREATE,
    DELETE,
    Relinker,
    ResolvedGroup,
    ResolveRules,
    hold_back,
    read_resolution,
    resolve_run,
)
from bulkimg.shop.variantimages import Choice, choose
from bulkimg.shopify.bulkjob import BulkRunner, PollPolicy, new_record, sha256_of
from bulkimg.shopify.client import ShopifyClient, ShopifyError
from bulkimg.shopify.results import (
    ExportedMedia,
    ExportedProduct,
    ExportedVariant,
    LineResult,
    read_export,
    read_line_results,
)
from bulkimg.shopify.statuses import FAILED_STATUSES, BulkOperationStatus, MediaStatus

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

VARIANT_MEDIA_DOCUMENT = "variant_append_media"
VARIANT_DETACH_DOCUMENT = "variant_detach_media"
REORDER_DOCUMENT = "product_reorder_media"
EXPORT_DOCUMENT = "export_products"
MAX_PAIRS_PER_LINE = 100  # productVariantAppendMedia: at most 100 variant-media pairs per call
NOT_STARTED: dict[str, object] = {
    "code": "NOT_RUN",
    "field": None,
    "message": "not started: the run was cancelled",
}
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
                self.client.execute("bulk_operation_cancel", {"id": op.operation_id})
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
            g.handle: _product_id(resolved.get(g.group_id), phase1_results.get(g.group_id))
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
            group_id: (None, LineResult(-1, {"product": None})) for group_id in state.phase1_skipped
        }
        by_line: dict[tuple[str, int], str] = {}
        for resolved in self._resolution(state).values():
            for ref in resolved.lines:
                by_line[(ref.file, ref.line)] = resolved.group_id
            if resolved.lines:
                continue
            if resolved.action == "unchanged":  # the shop already holds its images
                payload = {"product": {"id": resolved.product_id}}
                results[resolved.group_id] = (None, LineResult(-1, payload))
            elif resolved.action in ("conflict", "not_created"):  # reported, never guessed
                code = "IDENTITY_CONFLICT" if resolved.action == "conflict" else "NOT_CREATED"
                error = {"code": code, "field": None, "message": resolved.detail}
                results[resolved.group_id] = (None, LineResult(-1, None, [error]))
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
        interval = self.policy.interval
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
                    products.update(_pick(read_export(Path(op.result_file)), targets))
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
            self.sleep(interval)
            interval = min(self.policy.max_interval, interval * self.policy.growth)
            state.operations.append(new_record(Phase.EXPORT, Path(), EXPORT_DOCUMENT, search))
            self.store.save(state)

    # -- phase 2 -----------------------------------------------------------------------------

    def _detach_lines(
        self, state: RunState, done: list[PlanRecord], products: dict[str, ExportedProduct]
    ) -> list[dict[str, Any]]:
        """Phase 2's first lines: the images of variants that get another one, detached
        (shop/variantimages.py says which)."""
        lines: list[dict[str, Any]] = []
        for _, product, _, wanted in self._variant_images(state, done, products):
            pairs = [(p.variant_id, p.detach) for p in wanted if p.detach]
            lines.extend(_variant_media_lines(product.id, pairs))
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
                wanted = _wanted_pairs(group, product, known, state.replace_variant_images)
                yield group, product, known, wanted

    def _write_lines(
        self, state: RunState, name: str, document: str, lines: list[dict[str, Any]]
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
        attach: list[dict[str, Any]] = []
        reorder: list[dict[str, Any]] = []
        detached = _detached(state)
        for group, product, known, wanted in self._variant_images(state, done, products):
            pairs = [
                (p.variant_id, p.media_id)
                for p in wanted
                if p.detach is None or (p.variant_id, p.detach) in detached
            ]
            attach.extend(_variant_media_lines(product.id, pairs))
            if known is not None and known.action == "update" and known.uploads:
                media = _media_by_key(group, product, known)
                moves = [media[m.s3_key].id for m in group.media if m.s3_key in media]
                reorder.append(
                    {
                        "id": product.id,
                        "moves": [{"id": m, "newPosition": str(i)} for i, m in enumerate(moves)],
                    }
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
                    entry = _unchanged_outcome(group, shop_state)
                    counts["unchanged"] += 1
                else:
                    entry, group_failures = _group_outcome(
                        group, phase1.get(group_id), products, phase2, resolved.get(group_id)
                    )
                if group_id in resolved:
                    entry = entry.model_copy(update={"action": resolved[group_id].action})
                for problem in (canary or {}).get(group_id, []):
                    group_failures.append(_canary_failure(group, problem))
                    entry = entry.model_copy(update={"status": "failed"})
                manifest.append(entry)
                failures.extend(group_failures)
                counts[entry.status] += 1
            _record_state(shop_state, groups, products, manifest)
        submitted = sum(op.input_lines for op in state.ops(Phase.PRODUCT_SET))
        sent = [r for _, r in phase1_line_results(state)]
        p1_failed = sum(1 for r in sent if not r.ok)
        p1_done = sum(1 for r in sent if r.ok)
        if p1_done + p1_failed != submitted:  # every input line is accounted for
            raise AssertionError(f"lines: {p1_done} done + {p1_failed} failed != {submitted}")
        counts.update(lines_submitted=submitted, lines_done=p1_done, lines_failed=p1_failed)
        counts["variant_media_lines"] = sum(op.input_lines for op in state.ops(Phase.VARIANT_MEDIA))
        counts.update(_shop_counts(resolved.values()))

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
        for entry in _phase2_lines(state, Phase.VARIANT_DETACH, Phase.VARIANT_MEDIA):
            product_id = entry.variables.get("productId") or entry.variables.get("id")
            out.setdefault(str(product_id), []).append(entry)
        return out

    def _write_outcome(
        self, state: RunState, manifest: list[ManifestRecord], failures: list[FailureRecord]
    ) -> tuple[Path, Path, Path]:
        started = datetime.fromisoformat(state.created_at).astimezone()
        manifest_path = self.out / MANIFEST_FILE
        failures_path = self.out / FAILURES_FILE
        log_path = self.settings.logs_dir / log_file_name("image_upload_failures", started)
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
PHASE2_PAYLOAD_FIELDS = {
    VARIANT_DETACH_DOCUMENT: "productVariantDetachMedia",
    VARIANT_MEDIA_DOCUMENT: "productVariantAppendMedia",
    REORDER_DOCUMENT: "productReorderMedia",
}


def phase1_line_results(state: RunState) -> Iterator[tuple[OperationRecord, LineResult]]:
    """Every input line of phase 1 with its result, whatever document its file runs."""
    for op in state.ops(Phase.PRODUCT_SET):
        for result in read_line_results(op, PAYLOAD_FIELDS[op.document]).values():
            yield op, result


def _canary_failure(group: PlanRecord, problem: str) -> FailureRecord:
    error = {"code": "CANARY_NOT_ONLY_IMAGES", "field": None, "message": problem}
    return failure_of("canary", group.group_id, group.handle, None, None, None, [error], False)


def _shop_counts(resolved: Iterable[ResolvedGroup]) -> dict[str, int]:
    """What the run did to the shop's images, from the resolution (0s when nothing resolved)."""
    counts = dict.fromkeys(
        ("products_created", "products_conflict", "products_not_created", "images_adopted",
         "images_uploaded", "images_replaced", "images_removed", "images_kept_foreign",
         "variant_images_swapped", "variant_images_kept", "products_held"),
        0,
    )  # fmt: skip
    for group in resolved:
        if group.action in ("create", "conflict", "not_created", "held"):
            key = {"create": "created"}.get(group.action, group.action)
            counts[f"products_{key}"] += 1
        for name in ("adopted", "uploaded", "replaced", "removed", "kept_foreign"):
            counts[f"images_{name}"] += getattr(group, name)
        counts["variant_images_swapped"] += group.variant_images_swapped
        counts["variant_images_kept"] += group.variant_images_kept
    return counts


def _product_id(
    resolved: ResolvedGroup | None, phase1: tuple[OperationRecord | None, LineResult] | None
) -> str | None:
    """The group's product id: resolved from the shop, or returned by the line that created it."""
    if resolved is not None and resolved.product_id:
        return resolved.product_id
    payload = (phase1[1].payload or {}) if phase1 else {}
    product = payload.get("product") or {}
    return str(product["id"]) if product.get("id") else None


def _pick(
    exported: dict[str, ExportedProduct], targets: dict[str, str | None]
) -> dict[str, ExportedProduct]:
    """Exported products by plan handle: by id when known, else by the handle it was made with."""
    by_id = {p.id: p for p in exported.values()}
    picked: dict[str, ExportedProduct] = {}
    for handle, product_id in targets.items():
        product = by_id.get(product_id) if product_id else exported.get(handle)
        if product is not None:
            picked[handle] = product
    return picked


def _media_by_key(
    group: PlanRecord, product: ExportedProduct, resolved: ResolvedGroup | None
) -> dict[str, ExportedMedia]:
    """The product's media for each planned S3 key, by id or file name, never by alt text: the
    media id resolved before phase 1 (kept or adopted), else the newest media named for that S3
    object (bulkimg's name on a product it created, the S3 file's name on one it appended to),
    never a copy the run deleted; a media not processed yet has no name to read and is matched
    by the alt text bulkimg gave it."""
    known = resolved.media_of if resolved else {}
    dropped = set(resolved.dropped) if resolved else set()
    live = sorted(
        (m for m in product.media if m.id not in dropped), key=lambda m: _gid_number(m.id)
    )
    by_id = {m.id: m for m in live}
    by_name = {base_name(filename_of_url(m.url)): m for m in live if m.url}
    unnamed = {m.alt: m for m in live if not m.url and m.id not in known.values()}
    found: dict[str, ExportedMedia] = {}
    for m in group.media:
        media = (
            by_id.get(known.get(m.s3_key, ""))
            or by_name.get(shopify_filename(m.s3_key, m.etag))
            or by_name.get(s3_filename(m.s3_key))
            or unnamed.get(m.alt)
        )
        if media is not None:
            found[m.s3_key] = media
    return found


def _gid_number(gid: str) -> int:
    tail = gid.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class Phase2Line(NamedTuple):
    """One line of phase 2 and its result."""

    document: str
    variables: dict[str, Any]
    result: LineResult
    file: str
    line: int  # 1-based


class VariantImage(NamedTuple):
    """A variant image phase 2 attaches, and the image it detaches first (None: shows none)."""

    variant_id: str
    media_id: str
    detach: str | None


def _wanted_pairs(
    group: PlanRecord, product: ExportedProduct, resolved: ResolvedGroup | None, replace_all: bool
) -> list[VariantImage]:
    """The variant images to attach (shop/variantimages.py says which variants get one): each
    variant's primary image, or the new copy of the image of its own Image_SKU it showed
    before this run replaced it. Only READY images: Shopify refuses the others."""
    media = _media_by_key(group, product, resolved)
    image_sku_of = {m.s3_key: m.image_sku for m in group.media}
    own = {image.id: image_sku_of[key] for key, image in media.items()}
    relink = resolved.relink if resolved else {}
    variants = {v.sku: v for v in product.variants}
    wanted: list[VariantImage] = []
    for v in group.variants:
        variant = variants.get(v.sku)
        if variant is None:
            continue
        shown = variant.media_ids[0] if variant.media_ids else None
        key = relink.get(variant.id, v.image_s3_key) if shown is None else v.image_s3_key
        image = media.get(key) if key else None
        if image is None or image.status != "READY":
            continue
        choice = choose(v.image_sku, image.id, shown, own, replace_all)
        if choice is Choice.SET:
            wanted.append(VariantImage(variant.id, image.id, None))
        elif choice is Choice.SWAP and shown is not None:
            wanted.append(VariantImage(variant.id, image.id, shown))
    return wanted


def _variant_media_lines(product_id: str, pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Lines of productVariantAppendMedia/DetachMedia: at most 100 pairs each."""
    return [
        {
            "productId": product_id,
            "variantMedia": [
                {"variantId": v, "mediaIds": [m]}
                for v, m in pairs[start : start + MAX_PAIRS_PER_LINE]
            ],
        }
        for start in range(0, len(pairs), MAX_PAIRS_PER_LINE)
    ]


def _phase2_lines(state: RunState, *phases: Phase) -> Iterator[Phase2Line]:
    """Every input line of the operations of `phases`, with its result."""
    for phase in phases:
        for op in state.ops(phase):
            results = read_line_results(op, PHASE2_PAYLOAD_FIELDS[op.document])
            name = Path(op.input_file).name
            for number, variables in enumerate(iter_jsonl(Path(op.input_file))):
                yield Phase2Line(op.document, variables, results[number], name, number + 1)


def _detached(state: RunState) -> set[tuple[str, str]]:
    """(variant id, media id) pairs the run's detach lines detached."""
    return {
        (pair["variantId"], pair["mediaIds"][0])
        for entry in _phase2_lines(state, Phase.VARIANT_DETACH)
        if entry.result.ok
        for pair in entry.variables["variantMedia"]
    }


def _unchanged_outcome(group: PlanRecord, shop_state: StateStore) -> ManifestRecord:
    """A group the build found already right on the shop: its entry, from the state file."""
    known = shop_state.product(group.handle)
    if known is None:  # the state changed since the build: report what the plan says
        return _manifest_entry(group, None, "missing" if group.missing else "done", {}, {})
    media: dict[str, ExportedMedia] = {}
    for want in group.media:
        match = next(
            (k for k in known.media if k.same_object(want.image_sku, want.variation, want.etag)),
            None,
        )
        if match is not None:
            media[want.s3_key] = ExportedMedia(match.media_id, want.alt, match.status, None)
    variants = [ExportedVariant(vid, sku) for sku, (vid, _) in known.variants.items()]
    attached = {vid: mid for vid, mid in known.variants.values() if mid}
    product = ExportedProduct(known.product_id, known.handle, [], variants)
    status: GroupStatus = "missing" if group.missing else "done"
    return _manifest_entry(group, product, status, media, attached)


def _record_state(
    shop_state: StateStore,
    groups: dict[str, PlanRecord],
    products: dict[str, ExportedProduct],
    manifest: list[ManifestRecord],
) -> None:
    """Remember what the run's products hold now, variant images included."""
    plans = {g.handle: g for g in groups.values()}
    entries = {e.handle: e for e in manifest}

    def known(handle: str, product: ExportedProduct) -> ProductState:
        state = product_state(product, plans.get(handle))
        entry = entries.get(handle)
        for variant in entry.variants if entry else []:
            if variant.id:
                state.variants[variant.sku] = (variant.id, variant.media_id)
        return state

    shop_state.replace_products(known(h, p) for h, p in products.items())


def _group_outcome(
    group: PlanRecord,
    phase1: tuple[OperationRecord | None, LineResult] | None,
    products: dict[str, ExportedProduct],
    phase2: dict[str, list[Phase2Line]],
    resolved: ResolvedGroup | None = None,
) -> tuple[ManifestRecord, list[FailureRecord]]:
    failures: list[FailureRecord] = []
    product = products.get(group.handle)
    if group.status == "deferred" or phase1 is None:
        reason = group.deferred_reason or "no productSet line for this group"
        failures.append(
            failure_of("build", group.group_id, group.handle, None, None, None,
                    [{"code": "DEFERRED", "field": None, "message": reason}], True)
        )  # fmt: skip
        return _manifest_entry(group, None, "failed", {}, {}), failures
    op, result = phase1
    if not result.ok:
        file = Path(op.input_file).name if op else None
        variables = _input_line(op, result.line) if op else None
        failures.append(
            failure_of("product_set", group.group_id, group.handle, file,
                    result.line + 1 if op else None, variables, result.errors, result.retryable)
        )  # fmt: skip
        return _manifest_entry(group, None, "failed", {}, {}), failures
    payload_product = (result.payload or {}).get("product") or {}
    product_id = product.id if product else str(payload_product.get("id") or "")
    media = _media_by_key(group, product, resolved) if product else {}
    attached = _attached(group, product, phase2.get(product_id, []), failures)
    failures.extend(_media_failures(group, product, media, attached))
    missing = bool(group.missing)
    status: GroupStatus = "failed" if failures else ("missing" if missing else "done")
    return _manifest_entry(group, product, status, media, attached), failures


def _attached(
    group: PlanRecord,
    product: ExportedProduct | None,
    lines: list[Phase2Line],
    failures: list[FailureRecord],
) -> dict[str, str]:
    """variant id -> media id attached (already, or by a successful phase 2 line)."""
    attached = {v.id: v.media_ids[0] for v in (product.variants if product else []) if v.media_ids}
    for document, variables, result, file, line in lines:
        if document == REORDER_DOCUMENT:  # putting bulkimg's images first again
            if not result.ok:
                failures.append(
                    failure_of("reorder", group.group_id, group.handle, file, line, variables,
                            result.errors, False)
                )  # fmt: skip
            continue
        pairs = {p["variantId"]: p["mediaIds"][0] for p in variables["variantMedia"]}
        if document == VARIANT_DETACH_DOCUMENT:
            if result.ok:
                for variant_id in pairs:
                    attached.pop(variant_id, None)
            else:  # the variant keeps the image it shows: nothing is attached to it
                failures.append(
                    failure_of("variant_detach", group.group_id, group.handle, file, line,
                            variables, result.errors, result.retryable)
                )  # fmt: skip
            continue
        if result.ok:
            attached.update(pairs)
        else:
            for variant_id in pairs:
                attached.pop(variant_id, None)
            failures.append(
                failure_of("variant_media", group.group_id, group.handle, file, line, variables,
                        result.errors, result.retryable)
            )  # fmt: skip
    return attached


def _media_failures(
    group: PlanRecord,
    product: ExportedProduct | None,
    media: dict[str, ExportedMedia],
    attached: dict[str, str],
) -> list[FailureRecord]:
    """Images that failed on Shopify, and variants whose primary image could not be attached."""
    failures: list[FailureRecord] = []
    product_id = product.id if product else None

    def fail(code: str, message: str, variables: dict[str, Any], retryable: bool = True) -> None:
        failures.append(
            failure_of("variant_media", group.group_id, group.handle, None, None,
                    {"productId": product_id, **variables},
                    [{"code": code, "field": None, "message": message}], retryable)
        )  # fmt: skip

    for m in group.media:
        image = media.get(m.s3_key)
        if image is not None and image.status == "FAILED":
            fail("MEDIA_FAILED", _media_error(image), {"mediaId": image.id, "s3_key": m.s3_key})
        elif image is not None and image.status != "READY":
            # Every image, not only variants' primary ones: "done" means all of them READY.
            message = f"media still {image.status} after the wait"
            fail("MEDIA_NOT_READY", message, {"mediaId": image.id, "s3_key": m.s3_key})
    variants = {v.sku: v for v in (product.variants if product else [])}
    for v in group.variants:
        key, variant = v.image_s3_key, variants.get(v.sku)
        image = media.get(key) if key else None
        if not key or (variant and image and attached.get(variant.id) == image.id):
            continue
        pair = {"sku": v.sku, "s3_key": key, "variantId": variant.id if variant else None}
        if variant is None or image is None:
            fail("NOT_FOUND", "variant or image not on the product after productSet", pair)
    return failures


def _media_error(image: ExportedMedia) -> str:
    if image.errors:
        first = image.errors[0]
        return f"{first.get('code')}: {first.get('message')}"
    return "media processing failed"


def _manifest_entry(
    group: PlanRecord,
    product: ExportedProduct | None,
    status: GroupStatus,
    media: dict[str, ExportedMedia],
    attached: dict[str, str],
) -> ManifestRecord:
    keys = {m.id: key for key, m in media.items()}
    variant_ids = {v.sku: v.id for v in (product.variants if product else [])}
    return ManifestRecord(
        group_id=group.group_id,
        product_id=product.id if product else None,
        handle=group.handle,
        status=status,
        media=[
            ManifestMedia(
                id=media[m.s3_key].id if m.s3_key in media else None,
                s3_key=m.s3_key,
                etag=m.etag,
                status=_media_status(media[m.s3_key].status) if m.s3_key in media else None,
            )
            for m in group.media
        ],
        variants=[_manifest_variant(v, variant_ids, attached, keys) for v in group.variants],
    )


def _media_status(status: str) -> MediaStatus | None:
    """A media status the manifest knows (Shopify's MediaStatus), else None."""
    return MediaStatus(status) if status in MediaStatus.__members__ else None


def _manifest_variant(
    v: PlanVariant, variant_ids: dict[str, str], attached: dict[str, str], keys: dict[str, str]
) -> ManifestVariant:
    variant_id = variant_ids.get(v.sku)
    media_id = attached.get(variant_id) if variant_id else None
    return ManifestVariant(
        sku=v.sku,
        id=variant_id,
        media_id=media_id,
        s3_key=keys.get(media_id) if media_id else None,
    )


def _input_line(op: OperationRecord, line: int) -> dict[str, Any] | None:
    """The exact variables of an input line, with signed URLs redacted."""
    path = Path(op.input_file)
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        for number, raw in enumerate(handle):
            if number == line:
                return dict(orjson.loads(redact_url(raw.decode("utf-8"))))
    return None


def productset_files_of_build(output_dir: Path) -> list[Path]:
    """The JSONL files the last build wrote (from build-report.json)."""
    report = output_dir / "build-report.json"
    if not report.is_file():
        raise InputFileError(f"{report} not found: run `bulkimg build` first")
    files = [Path(p) for p in orjson.loads(report.read_bytes()).get("productset_files", [])]
    missing = [p for p in files if not p.is_file()]
    if missing:
        raise InputFileError(f"{missing[0]} not found: run `bulkimg build` again")
    return files


def live_status(client: ShopifyClient, state: RunState) -> dict[str, dict[str, Any]]:
    """The current state of the run's unfinished operations, by operation id."""
    live: dict[str, dict[str, Any]] = {}
    for op in state.operations:
        if op.operation_id and op.step is not Step.COLLECTED:
            node = client.execute("bulk_operation", {"id": op.operation_id})["bulkOperation"]
            if node:
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


def running_operations(client: ShopifyClient) -> list[dict[str, Any]]:
    """The shop's bulk operations that have not ended (any app's)."""
    found: list[dict[str, Any]] = []
    for status in ("created", "running", "canceling"):
        data = client.execute("bulk_operations", {"query": f"status:{status}"})
        found.extend(data["bulkOperations"]["nodes"])
    return found


def set_aside_damaged(store: RunStore, client: ShopifyClient) -> Path:
    """A run.json that cannot be read, set aside once the shop runs no bulk operation (one of
    bulkimg's might still be changing products: a new run must not overlap it). ConfigError,
    naming the operations, while some run."""
    running = running_operations(client)
    if running:
        ids = ", ".join(str(o["id"]) for o in running)
        raise ConfigError(
            f"{store.path} cannot be read and the shop still runs bulk operations ({ids}):"
            " wait until they end (`bulkimg status`), then run `bulkimg cancel` again"
        )
    aside = store.path.with_name(f"{store.path.name}.damaged-{now_iso().replace(':', '')}")
    store.path.replace(aside)
    return aside
