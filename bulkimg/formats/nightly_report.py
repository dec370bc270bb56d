"""`output/report.json` (the spec's metrics of a nightly `bulkimg run`) and `output/report.md`
(the same, for people)."""

from __future__ import annotations

from pathlib import Path

import orjson
from pydantic import BaseModel, ConfigDict

REPORT_FILE = "report.json"
REPORT_MARKDOWN = "report.md"


class NightlyReport(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    completed_at: str
    reconciled: dict[str, int] | None = None  # the state file rebuilt from the shop first
    groups: int = 0
    groups_unchanged: int = 0
    groups_sent: int = 0
    outcome: dict[str, int] = {}  # groups by manifest status
    bulk_operations: int = 0
    shopify_calls: int = 0
    s3_requests: dict[str, int] = {}
    s3_calls_per_group: float = 0
    images_fetched: int = 0
    images_uploaded: int = 0
    # What the run did to the shop's products and images (submit's counts).
    products_created: int = 0
    products_conflict: int = 0
    products_not_created: int = 0
    images_adopted: int = 0
    images_replaced: int = 0
    images_removed: int = 0
    images_kept_foreign: int = 0
    variant_images_swapped: int = 0
    variant_images_kept: int = 0
    upload_success_rate: float = 1.0
    seconds_per_image_sku: float = 0.0
    cache_hit_rate: float = 0.0
    missing_occurrences: int = 0
    failures: int = 0
    exit_code: int = 0


SHOP_COUNTS = (
    "products_created",
    "products_conflict",
    "products_not_created",
    "images_adopted",
    "images_replaced",
    "images_removed",
    "images_kept_foreign",
    "variant_images_swapped",
    "variant_images_kept",
)


def write_nightly_report(out: Path, report: NightlyReport) -> None:
    data = report.model_dump(mode="json")
    (out / REPORT_FILE).write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    (out / REPORT_MARKDOWN).write_text(_markdown(report), encoding="utf-8")


def read_nightly_report(out: Path) -> NightlyReport:
    return NightlyReport.model_validate_json((out / REPORT_FILE).read_bytes())


def _markdown(report: NightlyReport) -> str:
    outcome = report.outcome
    shop = ", ".join(f"{k.replace('_', ' ')} {getattr(report, k)}" for k in SHOP_COUNTS)
    lines = [
        "# bulkimg run",
        "",
        f"- completed: {report.completed_at} (exit code {report.exit_code})",
        f"- groups: {report.groups}; sent to Shopify: {report.groups_sent};"
        f" unchanged: {report.groups_unchanged}",
        f"- outcome: {', '.join(f'{k} {v}' for k, v in outcome.items()) or 'nothing sent'}",
        f"- bulk operations: {report.bulk_operations}; images uploaded:"
        f" {report.images_uploaded} (success rate {report.upload_success_rate:.1%})",
        f"- S3 requests: {report.s3_requests}; cache hit rate {report.cache_hit_rate:.1%}",
        f"- on the shop: {shop}",
        f"- variants without image: {report.missing_occurrences}; failures: {report.failures}",
    ]
    if report.reconciled:
        lines.append(f"- state rebuilt from the shop first: {report.reconciled}")
    return "\n".join(lines) + "\n"
