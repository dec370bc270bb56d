"""Incremental builds: which groups already match the shop, and what a changed group keeps.

A group is *unchanged* when the state file says its product holds exactly the wanted images
(same Image_SKU, variation and S3 ETag, in order, all READY) and every variant shows its
primary image: it gets no productSet line at all. Every other group gets a line in its create
form, which submit rewrites against a fresh export of the shop (shop/resolve.py).
"""

from __future__ import annotations

from typing import Literal

from bulkimg.formats.state import ProductState, StateStore
from bulkimg.models import GroupPlan

Change = Literal["new", "unchanged", "changed"]


def classify(plan: GroupPlan, known: ProductState | None) -> Change:
    """new (no product known), unchanged (nothing to send) or changed."""
    if known is None:
        return "new"
    return "unchanged" if _matches(plan, known) else "changed"


def _matches(plan: GroupPlan, known: ProductState) -> bool:
    ours = [m for m in known.media if m.ours]
    if plan.media:
        if len(ours) != len(plan.media):
            return False
        for have, want in zip(ours, plan.media, strict=True):
            if have.status != "READY" or not have.same_object(
                want.image_sku, want.variation, want.etag
            ):
                return False
    media_of = {want.s3_key: have.media_id for have, want in zip(ours, plan.media, strict=False)}
    for variant in plan.variants:
        entry = known.variants.get(variant.sku)
        if entry is None:
            return False
        if variant.image_s3_key and entry[1] != media_of.get(variant.image_s3_key):
            return False
    return True


class Incremental:
    """Applies the state file to each plan: a group the shop already matches gets no line."""

    def __init__(self, state: StateStore | None) -> None:
        self.state = state
        self.unchanged = 0

    def apply(self, plan: GroupPlan) -> None:
        known = self.state.product(plan.handle) if self.state else None
        if classify(plan, known) == "unchanged":
            plan.unchanged = True
            self.unchanged += 1
