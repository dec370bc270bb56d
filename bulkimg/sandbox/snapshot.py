"""What a shop's products look like at one moment, and what changed between two moments.

    before = snapshot(shop)
    ...  # bulkimg runs against the shop
    for change in diff(before, snapshot(shop)):
        print(change)

A snapshot holds every product's fields, options, variants (ids, SKUs, prices, barcodes,
inventory, option values), metafields, media (ids, file names, alt, positions, sizes) and
variant-media links, read from the sandbox store in one transaction.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Final

from bulkimg.plan.names import parse_shopify_filename

if TYPE_CHECKING:
    from bulkimg.sandbox.shop import SandboxShop

MEDIA_FIELDS: Final = frozenset({"media", "variant images"})
"""The fields bulkimg may change on a product that already exists."""

# The old workflow's names: the S3 file name itself, maybe with the `_<uuid>` of a name clash.
_S3_NAME = re.compile(
    r"(?P<stem>[A-Za-z0-9_-]+?-[0-9]+a-[0-9]+)(?:_[0-9a-fA-F-]{36})?\.(?P<ext>[A-Za-z0-9]+)"
)


def s3_file_of(filename: str) -> str | None:
    """The S3 file name a media on the shop is a copy of (bulkimg's name or the old workflow's
    S3 file name); None for any other file (a merchant's photo)."""
    parsed = parse_shopify_filename(filename)
    if parsed is not None:
        return parsed.s3_filename
    match = _S3_NAME.fullmatch(filename)
    return f"{match['stem']}.{match['ext']}" if match else None


@dataclass(frozen=True, slots=True)
class MediaSnap:
    id: int
    position: int
    filename: str
    alt: str | None
    status: str
    width: int | None
    height: int | None


@dataclass(frozen=True, slots=True)
class VariantSnap:
    id: int
    position: int
    sku: str | None
    options: tuple[tuple[str, str], ...]
    price: str
    compare_at_price: str | None
    barcode: str | None
    inventory_quantity: int | None
    media_id: int | None
    """The variant's image (a media of the product), if any."""


@dataclass(frozen=True, slots=True)
class ProductSnap:
    id: int
    handle: str
    title: str
    status: str
    vendor: str
    product_type: str
    description_html: str
    tags: tuple[str, ...]
    options: tuple[tuple[str, tuple[str, ...]], ...]
    variants: tuple[VariantSnap, ...]
    metafields: tuple[tuple[str, str, str, str], ...]
    """(namespace, key, type, value)"""
    media: tuple[MediaSnap, ...]

    def media_by_id(self) -> dict[int, MediaSnap]:
        return {m.id: m for m in self.media}

    def variant_images(self) -> dict[str, str]:
        """SKU → file name of the variant's image, for the variants that have one."""
        media = self.media_by_id()
        return {
            v.sku or str(v.id): media[v.media_id].filename
            for v in self.variants
            if v.media_id is not None and v.media_id in media
        }


@dataclass(frozen=True, slots=True)
class ShopSnapshot:
    products: Mapping[int, ProductSnap]
    """product id → product"""

    def by_handle(self) -> dict[str, ProductSnap]:
        return {p.handle: p for p in self.products.values()}

    def by_sku(self) -> dict[str, list[ProductSnap]]:
        """SKU → the products that have a variant with it."""
        found: dict[str, list[ProductSnap]] = defaultdict(list)
        for product in self.products.values():
            for sku in dict.fromkeys(v.sku for v in product.variants if v.sku):
                found[sku].append(product)
        return found


def snapshot(shop: SandboxShop) -> ShopSnapshot:
    """Every product of ``shop`` as it is now."""
    rows = shop.services.store.all_rows()
    options: dict[int, list[tuple[str, tuple[str, ...]]]] = defaultdict(list)
    for option in sorted(rows.options, key=lambda o: (o.product_id, o.position, o.id)):
        options[option.product_id].append((option.name, option.values))
    inventory = dict(rows.inventory)
    links = dict(rows.variant_media)
    variants: dict[int, list[VariantSnap]] = defaultdict(list)
    for v in sorted(rows.variants, key=lambda v: (v.product_id, v.position, v.id)):
        variants[v.product_id].append(
            VariantSnap(
                v.id,
                v.position,
                v.sku,
                v.selected,
                v.price,
                v.compare_at_price,
                v.barcode,
                inventory.get(v.id),
                links.get(v.id),
            )
        )
    media: dict[int, list[MediaSnap]] = defaultdict(list)
    for m in sorted(rows.media, key=lambda m: (m.product_id, m.position, m.id)):
        media[m.product_id].append(
            MediaSnap(m.id, m.position, m.filename, m.alt, m.status.value, m.width, m.height)
        )
    metafields: dict[int, list[tuple[str, str, str, str]]] = defaultdict(list)
    for f in rows.metafields:
        metafields[f.product_id].append((f.namespace, f.key, f.type, f.value))
    return ShopSnapshot(
        {
            p.id: ProductSnap(
                p.id,
                p.handle,
                p.title,
                p.status,
                p.vendor,
                p.product_type,
                p.description_html,
                p.tags,
                tuple(options[p.id]),
                tuple(variants[p.id]),
                tuple(metafields[p.id]),
                tuple(media[p.id]),
            )
            for p in rows.products
        }
    )


@dataclass(frozen=True, slots=True)
class Change:
    """One field of one product that differs (``field`` "product": created or deleted)."""

    product_id: int
    handle: str
    field: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.handle}: {self.field}: {self.before} -> {self.after}"


_PRODUCT_FIELDS: Final = (
    ("handle", "handle"),
    ("title", "title"),
    ("status", "status"),
    ("vendor", "vendor"),
    ("productType", "product_type"),
    ("descriptionHtml", "description_html"),
    ("tags", "tags"),
    ("options", "options"),
    ("metafields", "metafields"),
)
_VARIANT_FIELDS: Final = (
    ("price", "price"),
    ("compareAtPrice", "compare_at_price"),
    ("barcode", "barcode"),
    ("inventoryQuantity", "inventory_quantity"),
)


def diff(before: ShopSnapshot, after: ShopSnapshot) -> list[Change]:
    """Per product, which fields changed: products in id order, fields in a fixed order."""
    changes: list[Change] = []
    for product_id in sorted(before.products.keys() | after.products.keys()):
        old, new = before.products.get(product_id), after.products.get(product_id)
        if old is None or new is None:
            here = new or old
            assert here is not None
            state = ("absent", "created") if old is None else ("existed", "deleted")
            changes.append(Change(product_id, here.handle, "product", *state))
            continue
        changes.extend(_product_changes(old, new))
    return changes


def _product_changes(old: ProductSnap, new: ProductSnap) -> list[Change]:
    changes = []

    def changed(name: str, a: object, b: object) -> None:
        if a != b:
            changes.append(Change(old.id, new.handle, name, _text(a), _text(b)))

    for name, attr in _PRODUCT_FIELDS:
        changed(name, getattr(old, attr), getattr(new, attr))
    changed("variants", _variant_keys(old), _variant_keys(new))
    old_variants = {v.id: v for v in old.variants}
    for name, attr in _VARIANT_FIELDS:
        a = {v.id: getattr(v, attr) for v in old.variants}
        b = {v.id: getattr(v, attr) for v in new.variants if v.id in old_variants}
        changed(name, {k: a[k] for k in b}, b)
    if _media_keys(old) != _media_keys(new):
        changes.append(Change(old.id, new.handle, "media", *_media_change(old, new)))
    changed("variant images", old.variant_images(), new.variant_images())
    return changes


def _variant_keys(p: ProductSnap) -> list[tuple[int, str | None, tuple[tuple[str, str], ...]]]:
    return [(v.id, v.sku, v.options) for v in p.variants]


def _media_keys(p: ProductSnap) -> list[tuple[object, ...]]:
    return [tuple(getattr(m, f.name) for f in fields(m)) for m in p.media]


def _media_change(old: ProductSnap, new: ProductSnap) -> tuple[str, str]:
    old_ids, new_ids = old.media_by_id(), new.media_by_id()
    added = [m.filename for m in new.media if m.id not in old_ids]
    removed = [m.filename for m in old.media if m.id not in new_ids]
    notes = [f"+{name}" for name in added] + [f"-{name}" for name in removed]
    moved = [
        m.filename
        for m in new.media
        if m.id in old_ids and (old_ids[m.id].position, old_ids[m.id].alt) != (m.position, m.alt)
    ]
    if moved:
        notes.append(f"moved or alt changed: {', '.join(moved)}")
    after = f"{len(new.media)} media" + (f" ({'; '.join(notes)})" if notes else "")
    return f"{len(old.media)} media", after


def _text(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def summarize(changes: list[Change]) -> list[str]:
    """One line per product that changed (the fields, in order), then one line of counts."""
    fields_of: dict[tuple[int, str], list[str]] = {}
    for change in changes:
        key = (change.product_id, change.handle)
        label = change.after if change.field == "product" else change.field
        fields_of.setdefault(key, [])
        if label not in fields_of[key]:
            fields_of[key].append(label)
    lines = [f"{handle}: {', '.join(labels)}" for (_, handle), labels in fields_of.items()]
    created = sum(1 for labels in fields_of.values() if labels == ["created"])
    deleted = sum(1 for labels in fields_of.values() if labels == ["deleted"])
    images_only = sum(1 for labels in fields_of.values() if set(labels) <= MEDIA_FIELDS)
    more = len(fields_of) - created - deleted - images_only
    lines.append(
        f"{len(fields_of)} products changed: {images_only} only in images, {more} in other"
        f" fields too, {created} created, {deleted} deleted"
    )
    return lines
