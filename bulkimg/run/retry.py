"""`bulkimg retry failures.jsonl`: submit again only the lines that can succeed on a new try.

productSet failures get fresh lines built from the plan, without touching S3 beyond signing;
submit signs their URLs again with fresh credentials when it sends them (the old ones may have
expired). Variant-image failures of products that
exist skip productSet and go straight to the export and productVariantAppendMedia.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bulkimg.config import Settings
from bulkimg.errors import InputFileError
from bulkimg.formats.failures import FailureRecord, read_failures
from bulkimg.formats.jsonl import write_models
from bulkimg.formats.lines import ProductSetLine, write_lines
from bulkimg.formats.plan import PLAN_FILE, PlanRecord, read_plan
from bulkimg.plan.productset import LineRules, productset_variables
from bulkimg.progress import Reporter
from bulkimg.run.submit import Submission, SubmitOutcome
from bulkimg.s3.presign import link_lifetime, presigner
from bulkimg.shopify.client import ShopifyClient

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PRODUCT_PHASES = frozenset({"product_set"})
# Variant-image failures that only a new productSet (a new upload of the image) can fix.
REUPLOAD_CODES = frozenset({"MEDIA_FAILED", "NOT_FOUND"})


@dataclass(slots=True)
class RetryInputs:
    """What a retry run submits, and what it carries over unchanged."""

    plan_path: Path
    productset_files: list[Path]
    phase1_skipped: list[str]
    carried_failures: list[FailureRecord]
    groups: int

    @property
    def empty(self) -> bool:
        return self.groups == 0


def failures_to_retry(path: Path) -> list[FailureRecord]:
    """The failures of the file `bulkimg retry` was given; InputFileError when it is missing or
    a line is not a failure record."""
    if not path.is_file():
        raise InputFileError(f"{path} not found")
    return read_failures(path)


def prepare_retry(settings: Settings, failures_path: Path, s3: S3Client) -> RetryInputs:
    """Write the retry's plan and productSet lines under output/retry/."""
    failures = failures_to_retry(failures_path)
    retryable = [f for f in failures if f.retryable and f.phase != "build"]
    carried = [f for f in failures if f not in retryable]
    product_groups = {f.group_id for f in retryable if _needs_product_set(f)}
    media_groups = {f.group_id for f in retryable} - product_groups
    wanted = product_groups | media_groups
    plans = [r for r in read_plan(settings.output_dir / PLAN_FILE) if r.group_id in wanted]
    found = {r.group_id for r in plans}
    carried += [f for f in retryable if f.group_id not in found]  # plan rebuilt since
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    directory = settings.output_dir / "retry"
    directory.mkdir(parents=True, exist_ok=True)
    productset = directory / f"productset-retry-{stamp}.jsonl"
    plan_path = directory / f"plan-retry-{stamp}.jsonl"
    rules = LineRules(settings.option_name)

    # Submit signs every URL of the lines it sends again (and refuses when the credentials
    # expire too soon); these are the lines' URLs until then, capped as the build's are.
    lifetime = link_lifetime(s3, settings.presign_seconds, datetime.now(UTC))
    source_url = presigner(s3, settings.aws_s3_bucket or "", max(1, lifetime.seconds))

    # Lines in their create form: submit rewrites them against a fresh export of the shop, so
    # images an earlier line did put on the product (its result lost) are kept, not uploaded.
    # Both files are written whole or not at all (a failed retry leaves no half-written file).
    lines: list[ProductSetLine] = []
    retried: list[PlanRecord] = []
    for record in plans:
        if record.group_id in product_groups:
            lines.append(productset_variables(record.to_group_plan(), source_url, rules))
            retried.append(_retry_record(record, productset.name, len(lines)))
        else:
            retried.append(_retry_record(record, None, 0))
    if lines:
        write_lines(productset, lines)
    write_models(plan_path, retried)
    files = [productset] if lines else []
    return RetryInputs(plan_path, files, sorted(media_groups), carried, len(plans))


def _needs_product_set(failure: FailureRecord) -> bool:
    codes = {str(e.code) for e in failure.errors}
    return failure.phase in PRODUCT_PHASES or bool(codes & REUPLOAD_CODES)


def _retry_record(record: PlanRecord, file: str | None, line: int) -> PlanRecord:
    return record.model_copy(
        update={"status": "planned", "file": file, "line": line if file else None}
    )


def run_retry(
    settings: Settings,
    client: ShopifyClient,
    failures_path: Path,
    s3: S3Client,
    reporter: Reporter | None = None,
) -> tuple[RetryInputs, SubmitOutcome | None]:
    """Prepare and run a retry; no run (None) when nothing in the file is retryable."""
    client.reach()  # a wrong SHOPIFY_SHOP stops here, before anything is written
    inputs = prepare_retry(settings, failures_path, s3)
    if inputs.empty:
        return inputs, None
    submission = Submission(settings, client, reporter, plan_path=inputs.plan_path, s3=s3)
    state = submission.start(
        inputs.productset_files,
        phase1_skipped=inputs.phase1_skipped,
        merge_manifest=True,
        carried_failures=inputs.carried_failures,
    )
    return inputs, submission.run(state, wait=True)
