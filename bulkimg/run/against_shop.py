"""`bulkimg plan --against-shop`: what a submit of the current build would change on the shop,
product by product, without changing anything (one read-only bulk export)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bulkimg.config import Settings
from bulkimg.formats.resolution import CHECK_DIR, CHECK_RUN_ID, ResolvedGroup, read_resolution
from bulkimg.progress import Reporter
from bulkimg.run.ledger import productset_files_of_build
from bulkimg.run.nightly import export_shop
from bulkimg.shop.resolve import ResolveRules, resolve_run
from bulkimg.shopify.client import ShopifyClient

CHECK_RUN_FILE = "check.json"


@dataclass(slots=True)
class ShopCheck:
    """Each group as a submit would resolve it now, and anything it would change that bulkimg
    does not own (always empty unless bulkimg has a bug: its lines are checked)."""

    groups: list[ResolvedGroup] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for group in self.groups:
            totals[f"products {group.action}"] = totals.get(f"products {group.action}", 0) + 1
            for name in ("adopted", "uploaded", "replaced", "removed", "kept_foreign"):
                totals[f"images {name}"] = totals.get(f"images {name}", 0) + getattr(group, name)
            for name in ("variant_images_set", "variant_images_swapped", "variant_images_kept"):
                totals[name] = totals.get(name, 0) + getattr(group, name)
        return totals


def check_against_shop(
    settings: Settings, client: ShopifyClient, reporter: Reporter | None = None
) -> ShopCheck:
    """Resolve the last build's lines against a fresh export into output/check/ (never sent)."""
    files = productset_files_of_build(settings.output_dir)
    export = export_shop(settings, client, CHECK_RUN_FILE, reporter)
    out = settings.output_dir / CHECK_DIR
    out.mkdir(parents=True, exist_ok=True)
    rules = ResolveRules(
        settings.create_products, settings.create_status, settings.replace_variant_images
    )
    check = ShopCheck()
    try:
        _, resolution = resolve_run(
            settings.output_dir / "plan.jsonl", files, export, out, CHECK_RUN_ID, rules
        )
    except AssertionError as exc:  # a line that would touch what bulkimg does not own
        check.problems.append(str(exc))
        return check
    check.groups = list(read_resolution(Path(resolution)))
    return check
