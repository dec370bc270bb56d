"""Incremental builds: which groups already match the shop, and what a changed group keeps.

A group is *unchanged* when the state file says its product holds exactly the wanted images
(same Image_SKU, variation and S3 ETag, in order, all READY) and every variant shows its
primary image: it gets no productSet line at all. A *changed* group's line names the images it
keeps by media id (no upload) and adds only new or replaced ones by URL; images bulkimg did not
upload stay on the product, after ours, unless `--prune` is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Protocol

from bulkimg.models import GroupPlan
from bulkimg.results import ExportedMedia, ExportedProduct
from bulkimg.statestore import KnownMedia, ProductState, StateStore, product_state

if TYPE_CHECKING:
    from bulkimg.shopify_client import ShopifyClient

Change = Literal["new", "unchanged", "changed"]


class ShopProducts(Protocol):
    """Reads a product as it is on the shop now."""

    def product(self, handle: str) -> ExportedProduct | None: ...


class LiveShop:
    """ShopProducts over the Admin API: one query per product looked up."""

    def __init__(self, client: ShopifyClient) -> None:
        self.client = client
        self.lookups = 0

    def product(self, handle: str) -> ExportedProduct | None:
        self.lookups += 1
        data = self.client.execute("product_media", {"handle": handle})
        return _exported(data.get("productByIdentifier"))


def _exported(node: dict[str, Any] | None) -> ExportedProduct | None:
    if not node:
        return None
    media = [
        ExportedMedia(m["id"], m.get("alt") or "", m["status"], (m.get("image") or {}).get("url"))
        for m in node["media"]["nodes"]
    ]
    return ExportedProduct(node["id"], node["handle"], media, [])


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


def current_state(
    handle: str, known: ProductState, shop: ShopProducts | None
) -> ProductState | None:
    """The product as it is now: looked up live when a shop is given, else as last recorded.

    Images the live product holds that the state file knows as bulkimg's stay bulkimg's even
    when their file name cannot be read yet (still processing).
    """
    if shop is None:
        return known
    live = shop.product(handle)
    if live is None:
        return None  # deleted on the shop: create it again
    current = product_state(live)
    ours = {m.media_id: m for m in known.media if m.ours}
    current.media = [
        ours.get(m.media_id, m) if not m.ours else m for m in current.media
    ]  # fmt: skip
    return current


def keep_and_foreign(
    plan: GroupPlan, current: ProductState, prune: bool
) -> tuple[dict[str, str], list[str]]:
    """(S3 key → media id to keep, media ids of other images to keep after ours)."""
    keep: dict[str, str] = {}
    foreign: list[str] = []
    for have in current.media:
        if not have.ours:
            if not prune:
                foreign.append(have.media_id)
            continue
        if have.status == "FAILED":
            continue  # a failed image is uploaded again
        wanted = _first_wanted(plan, have, keep)
        if wanted is not None:
            keep[wanted] = have.media_id
    return keep, foreign


def _first_wanted(plan: GroupPlan, have: KnownMedia, keep: dict[str, str]) -> str | None:
    for want in plan.media:
        if want.s3_key not in keep and have.same_object(want.image_sku, want.variation, want.etag):
            return want.s3_key
    return None


class Incremental:
    """Applies the state file (and, for changed products, the live shop) to each plan."""

    def __init__(self, state: StateStore | None, shop: ShopProducts | None, prune: bool) -> None:
        self.state = state
        self.shop = shop
        self.prune = prune
        self.unchanged = 0

    def apply(self, plan: GroupPlan) -> None:
        known = self.state.product(plan.handle) if self.state else None
        change = classify(plan, known)
        if change == "unchanged":
            plan.unchanged = True
            self.unchanged += 1
        elif change == "changed" and known is not None:
            current = current_state(plan.handle, known, self.shop)
            if current is not None:
                plan.keep_media, plan.foreign_media = keep_and_foreign(plan, current, self.prune)
