"""`bulkimg build`: catalog -> S3 index -> plans -> productSet JSONL, plan, logs and report."""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from bulkimg.catalog import Catalog, open_settings_catalog, read_catalog, redact_catalog_url
from bulkimg.config import Settings
from bulkimg.errors import CatalogError, ConfigError
from bulkimg.formats.build_report import (
    BUILD_REPORT_FILE,
    BuildReport,
    LinkCheck,
    dump_build_report,
)
from bulkimg.formats.lines import dump_line
from bulkimg.formats.logs import MISSING_IMAGES, MissingImagesLog, log_file_name, log_safe
from bulkimg.formats.plan import (
    PLAN_FILE,
    PlanMedia,
    PlanMissing,
    PlanRecord,
    PlanRejected,
    PlanVariant,
)
from bulkimg.formats.state import StateStore
from bulkimg.images.cache import ProbeCache
from bulkimg.images.rules import ImageRules
from bulkimg.models import GroupPlan, ImageSkuState, RowProblemKind, SkuImages
from bulkimg.outputs import OutputSet, PartedJsonl, output_set
from bulkimg.plan.groups import PlanRules, plan_group
from bulkimg.plan.incremental import Incremental
from bulkimg.plan.productset import LineRules, productset_variables
from bulkimg.progress import NullReporter, Reporter
from bulkimg.report.preview import PreviewOptions, PreviewResult, write_preview
from bulkimg.s3.client import BucketRegion, RequestCounter, client_for_bucket
from bulkimg.s3.index import S3ImageIndex
from bulkimg.s3.linkcheck import check_link
from bulkimg.s3.options import S3Options
from bulkimg.s3.presign import FastPresigner, LinkLifetime, link_lifetime, presigner
from bulkimg.s3.stats import IndexStats

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PRODUCTSET_STEM = "productset"
CACHE_FILE = "dimensions.sqlite"
# URLs valid for less than this are not worth writing: the credentials are about to expire.
MIN_LINK_SECONDS = 60


@dataclass(frozen=True, slots=True)
class BuildResult:
    report: BuildReport
    report_path: Path


def run_build(
    settings: Settings,
    group_ids: Sequence[str] | None = None,
    reporter: Reporter | None = None,
    s3_client: S3Client | None = None,
) -> BuildResult:
    """Run a whole build; outputs appear only if it succeeds.

    With a state file (settings.state_file), groups the shop already matches get no line. The
    build asks the shop nothing: submit resolves each line against a fresh export.
    """
    settings.require("catalog", "aws_s3_bucket")
    reporter = reporter or NullReporter()
    plan_rules = PlanRules(settings.handle_template, settings.alt_template)
    line_rules = LineRules(settings.option_name)
    s3_options = S3Options.from_settings(settings)
    started, t0 = datetime.now(), time.monotonic()

    catalog, image_skus = _read_catalog(settings, group_ids, reporter)

    counter = RequestCounter()
    # Before anything is written: the bucket's region, followed when AWS_REGION is another.
    client, region = client_for_bucket(settings, s3_client, counter.attach)
    cache = ProbeCache(settings.cache_dir / CACHE_FILE)
    try:
        indexer = S3ImageIndex(
            client, s3_options, ImageRules.from_settings(settings), cache, reporter
        )
        index = indexer.index(image_skus)
    finally:
        cache.close()

    lifetime, source_url = _signer(client, settings)

    state = StateStore(settings.state_file) if settings.state_file.is_file() else None
    incremental = Incremental(state)
    with output_set() as outputs:
        try:
            written = _write_outputs(
                outputs, settings, catalog, index, plan_rules, line_rules, source_url, started,
                incremental,
            )  # fmt: skip
        finally:
            if state is not None:
                state.close()
        checked = None
        if written.first_key is not None:  # before success is reported: does a link work?
            url = source_url(written.first_key)
            checked = check_link(s3_options, url, written.first_key, client.meta.events)
        plan_temp = outputs.written_temp(written.plan_path)
        options = PreviewOptions.from_settings(settings)
        preview = write_preview(
            outputs, options, plan_temp, client, presign=source_url, lifetime=lifetime
        )
        wall = time.monotonic() - t0
        report = _report(
            catalog, image_skus, indexer.stats, counter, written, preview, started, wall
        )
        report = report.model_copy(update=_access_fields(region, lifetime, checked, counter))
        report_path = settings.output_dir / BUILD_REPORT_FILE
        outputs.open(report_path).write(dump_build_report(report))
        stale = _stale_parts(settings.output_dir, written.productset_files)
        outputs.commit()
    for path in stale:
        path.unlink(missing_ok=True)
    return BuildResult(report, report_path)


def _read_catalog(
    settings: Settings, group_ids: Sequence[str] | None, reporter: Reporter
) -> tuple[Catalog, list[str]]:
    """The catalog's groups and the valid Image_SKUs they name, sorted."""
    source = open_settings_catalog(settings)
    reporter.info("Reading catalog")
    catalog = read_catalog(source, group_ids)
    _check_catalog(settings, catalog)
    image_skus = sorted(
        {v.image_sku for g in catalog.groups for v in g.variants}
        - {""}
        - {v.image_sku for g in catalog.groups for v in g.variants if v.image_sku_state
           is not ImageSkuState.OK}
    )  # fmt: skip
    reporter.info(
        f"{len(catalog.groups)} groups, {catalog.variant_count} variants,"
        f" {len(image_skus)} Image_SKUs"
    )
    return catalog, image_skus


def _signer(client: S3Client, settings: Settings) -> tuple[LinkLifetime, Callable[[str], str]]:
    """How long the build's links work, and the presigner of its S3 keys.

    Credentials and the signing time are frozen once: a key signed again gives the same URL,
    so the preview signs again (cheap) instead of keeping every URL of the JSONL in memory.
    """
    signed_at = datetime.now(UTC)
    lifetime = link_lifetime(client, settings.presign_seconds, signed_at)
    if lifetime.seconds < MIN_LINK_SECONDS:
        raise ConfigError(
            f"the S3 credentials expire at {lifetime.describe()}: too soon to sign links;"
            " refresh them (or let the role's session last longer) and build again"
        )
    source_url: Callable[[str], str] = presigner(
        client, settings.aws_s3_bucket or "", lifetime.seconds, clock=lambda: signed_at
    )
    if not isinstance(source_url, FastPresigner):  # botocore signs at its own time: keep its URLs
        source_url = functools.cache(source_url)
    return lifetime, source_url


@dataclass(slots=True)
class _Written:
    productset_files: list[Path]
    plan_path: Path
    missing_log: Path
    groups_written: int
    deferred: dict[str, str]
    media: int
    missing: Counter[str]
    incremental: Incremental
    first_key: str | None = None  # the S3 key of the first URL written (the link check's)


def _check_catalog(settings: Settings, catalog: Catalog) -> None:
    """Refuse a build that can do nothing useful: unknown group ids, an empty catalog."""
    shown = redact_catalog_url(settings.catalog or "")
    unknown = [p.group_id for p in catalog.problems if p.kind is RowProblemKind.UNKNOWN_GROUP]
    if unknown:
        ids = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
        raise CatalogError(f"group id not in the catalog {shown}: {ids}; nothing was built")
    if catalog.rows_read == 0:
        where = shown if shown.lower().endswith(".csv") else f"{shown} (table {settings.table!r})"
        raise CatalogError(f"the catalog {where} has no rows: nothing to build")


def _write_outputs(
    outputs: OutputSet,
    settings: Settings,
    catalog: Catalog,
    index: dict[str, SkuImages],
    plan_rules: PlanRules,
    line_rules: LineRules,
    source_url: Callable[[str], str],
    started: datetime,
    incremental: Incremental,
) -> _Written:
    out_dir = settings.output_dir
    lines = PartedJsonl(outputs, out_dir, PRODUCTSET_STEM, settings.max_jsonl_bytes)
    plan_temp = outputs.open(out_dir / f".{PLAN_FILE}.parts")
    log_path = settings.logs_dir / log_file_name(MISSING_IMAGES, started)
    missing_log = MissingImagesLog(outputs.open(log_path), log_path)
    written = _Written([], out_dir / PLAN_FILE, log_path, 0, {}, 0, Counter(), incremental)
    handles: dict[str, str] = {}
    for group in catalog.groups:
        plan = plan_group(group, index, plan_rules)
        if plan.deferred is None and plan.handle in handles:
            plan.deferred = f"handle {plan.handle!r} is also the handle of {handles[plan.handle]!r}"
        if plan.deferred is None and not plan.handle:
            plan.deferred = "group id gives an empty handle"
        handles.setdefault(plan.handle, group.group_id)
        part, line = 0, 0
        if plan.deferred is not None:
            # Its rows are accounted as deferred (retryable), not missing: an image S3 failed
            # to return is not a missing image, and the group is judged again next run.
            written.deferred[group.group_id] = plan.deferred
        else:
            at = datetime.now()
            for item in plan.missing:
                missing_log.write(item, at)
                written.missing[item.reason.value] += 1
            incremental.apply(plan)
        if plan.deferred is None and not plan.unchanged:
            part, line = lines.write(dump_line(productset_variables(plan, source_url, line_rules)))
            written.groups_written += 1
            written.media += len(plan.media)
            if written.first_key is None and plan.media:
                written.first_key = plan.media[0].s3_key
        plan_temp.write(_plan_record(plan, part, line, index).dump())
    lines.rename_single_part()
    written.productset_files = lines.final_names()
    _finish_plan(outputs, out_dir, written.productset_files)
    return written


def _finish_plan(outputs: OutputSet, out_dir: Path, files: list[Path]) -> None:
    """Rewrite the plan with the JSONL file names, known only once every line is written."""
    parts = out_dir / f".{PLAN_FILE}.parts"
    plan = outputs.open(out_dir / PLAN_FILE)
    with outputs.written_temp(parts).open("rb") as records:
        for raw in records:
            record = orjson.loads(raw)  # our own lines (PlanRecord.dump): no need to validate
            if record["file"] is not None:
                record["file"] = files[int(record["file"]) - 1].name
                raw = orjson.dumps(record) + b"\n"
            plan.write(raw)
    outputs.discard(parts)


def _plan_record(plan: GroupPlan, part: int, line: int, index: dict[str, SkuImages]) -> PlanRecord:
    """The plan line of a group; `file` holds the part number until the names are known."""
    image_skus = dict.fromkeys(v.image_sku for v in plan.variants)
    return PlanRecord(
        group_id=plan.group_id,
        handle=plan.handle,
        title=plan.title,
        status="deferred" if plan.deferred else ("unchanged" if plan.unchanged else "planned"),
        deferred_reason=plan.deferred,
        file=str(part) if part else None,
        line=line or None,
        media=[PlanMedia.model_validate(m, from_attributes=True) for m in plan.media],
        variants=[PlanVariant.model_validate(v, from_attributes=True) for v in plan.variants],
        missing=[
            PlanMissing(sku=m.sku, image_sku=m.image_sku, reason=m.reason.value, detail=m.detail)
            for m in plan.missing
        ],
        rejected=[
            PlanRejected(image_sku=sku, s3_key=r.key, reason=r.reason.value, detail=r.detail)
            for sku in image_skus
            if sku in index
            for r in index[sku].rejected
        ],
    )


def _stale_parts(out_dir: Path, keep: list[Path]) -> list[Path]:
    """productset files of an earlier build that this build does not produce."""
    names = {p.name for p in keep}
    return [
        p
        for p in out_dir.glob(f"{PRODUCTSET_STEM}*.jsonl")
        if p.name not in names and p.name[len(PRODUCTSET_STEM)] in ".-"
    ]


def _access_fields(
    region: BucketRegion, lifetime: LinkLifetime, checked: LinkCheck | None, counter: RequestCounter
) -> dict[str, object]:
    """The report's fields on how S3 was reached and how long the links work."""
    return {
        "bucket_region": region.bucket,
        "signing_region": region.signing,
        "links_expire_at": lifetime.expires_at.isoformat(timespec="seconds"),
        "links_expiry": lifetime.describe(),
        "link_check": checked,
        "fast_path_fallbacks": counter.fallback_snapshot(),
        "s3_requests": counter.snapshot(),
        "s3_http_attempts": counter.attempts,
    }


def _report(
    catalog: Catalog,
    image_skus: list[str],
    stats: IndexStats,
    counter: RequestCounter,
    written: _Written,
    preview: PreviewResult,
    started: datetime,
    wall: float,
) -> BuildReport:
    problems: list[dict[str, str | int]] = [
        {
            "problem": p.kind.value,
            "group_id": log_safe(p.group_id),
            "sku": log_safe(p.sku),
            "image_sku": log_safe(p.image_sku),
            "row": p.row,
            "detail": log_safe(p.detail),
        }
        for p in catalog.problems
    ]
    return BuildReport(
        started_at=started.isoformat(timespec="seconds"),
        groups=len(catalog.groups),
        groups_written=written.groups_written,
        groups_deferred=written.deferred,
        groups_unchanged=written.incremental.unchanged,
        variants=catalog.variant_count,
        rows_read=catalog.rows_read,
        row_problems=problems,
        image_skus=len(image_skus),
        folders_needed=stats.folders_needed,
        list_strategy=stats.strategy,
        list_strategy_reason=stats.strategy_reason,
        prefixes_swept=stats.prefixes_swept,
        list_pages=stats.list_pages,
        objects_listed=stats.objects_listed,
        s3_requests=counter.snapshot(),
        s3_http_attempts=counter.attempts,
        cache_hits=stats.cache_hits,
        images_probed=stats.probed,
        probe_bytes=stats.bytes_read_summary(),
        images_accepted=stats.accepted,
        images_rejected=dict(sorted(stats.rejected.items())),
        variants_missing_images=dict(sorted(written.missing.items())),
        media_in_lines=written.media,
        productset_files=[str(p) for p in written.productset_files],
        plan_file=str(written.plan_path),
        missing_log=str(written.missing_log),
        preview_file=str(preview.path),
        thumbnail_gets=preview.thumbnail_gets,
        wall_seconds=round(wall, 3),
        seconds_per_image_sku=round(wall / len(image_skus), 6) if image_skus else 0.0,
        warnings=list(stats.warnings),
    )
