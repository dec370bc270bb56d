"""The canary: after a submit limited to a few products (`submit --limit N`), prove from two
exports of the shop, before and after, that those products changed in their images only.

Compared for each canary product that existed: every exported product field but its media (title,
handle, status, vendor, type, tags, description, options), the set of its variant ids and every
variant field but its image (SKU, price, compare-at price, barcode, inventory, options), and each
image bulkimg does not own, which must still be there.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import orjson

from bulkimg.formats.plan import PlanRecord
from bulkimg.shop.adoption import Fate, decide
from bulkimg.shopify.results import ExportedProduct, read_export


def canary_problems(
    before: Path, after: Iterable[Path], products: Iterable[tuple[PlanRecord, str]]
) -> dict[str, list[str]]:
    """What changed beyond images, by group id, for each (plan, product id); {} when nothing.
    `after` are the exports that followed, in order (a later one holds the newer view of the
    products it holds). Each export is read once."""
    was = {p.id: p for p in read_export(before).values()}
    now = {p.id: p for path in after for p in read_export(path).values()}
    problems: dict[str, list[str]] = {}
    for plan, product_id in products:
        old = was.get(product_id)
        if old is None:
            continue  # created by this run: nothing to compare
        found = _changes(plan, old, now.get(product_id))
        if found:
            problems[plan.group_id] = found
    return problems


def _changes(plan: PlanRecord, old: ExportedProduct, new: ExportedProduct | None) -> list[str]:
    name = f"{old.handle} ({old.id})"
    if new is None:
        return [f"{name}: no longer on the shop"]
    found = [f"{name}: {field} changed" for field in _changed(old.fields, new.fields)]
    old_variants = {v.id: v for v in old.variants}
    new_variants = {v.id: v for v in new.variants}
    if set(old_variants) != set(new_variants):
        found.append(
            f"{name}: variants replaced ({len(old_variants)} before, {len(new_variants)} after)"
        )
    for variant_id in sorted(set(old_variants) & set(new_variants)):
        for field in _changed(old_variants[variant_id].fields, new_variants[variant_id].fields):
            found.append(f"{name}: variant {old_variants[variant_id].sku} {field} changed")
    fates = decide(plan.media, old.media).fates
    kept = {m.id for m in new.media}
    for media in old.media:
        if fates.get(media.id) is Fate.FOREIGN and media.id not in kept:
            found.append(f"{name}: image {media.id} (not bulkimg's) is gone")
    return found


def _changed(before: str, after: str) -> list[str]:
    old = orjson.loads(before) if before else {}
    new = orjson.loads(after) if after else {}
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
