"""Phase 2 of a submit: which image each variant ends up showing, the productVariantDetachMedia,
productVariantAppendMedia and productReorderMedia lines that do it, and reading them back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from bulkimg.formats.lines import (
    PRODUCT_REORDER_MEDIA,
    VARIANT_APPEND_MEDIA,
    VARIANT_DETACH_MEDIA,
    Phase2Variables,
    ReorderMediaLine,
    VariantMediaLine,
    VariantMediaPair,
    read_lines,
)
from bulkimg.formats.plan import PlanRecord
from bulkimg.formats.resolution import ResolvedGroup
from bulkimg.formats.run import OperationRecord, Phase, RunState
from bulkimg.plan.names import filename_of_url, shopify_filename
from bulkimg.shop.adoption import base_name, s3_filename
from bulkimg.shop.variantimages import Choice, choose
from bulkimg.shopify.results import (
    ExportedMedia,
    ExportedProduct,
    LineResult,
    read_line_results,
)

VARIANT_MEDIA_DOCUMENT = VARIANT_APPEND_MEDIA


VARIANT_DETACH_DOCUMENT = VARIANT_DETACH_MEDIA


REORDER_DOCUMENT = PRODUCT_REORDER_MEDIA


MAX_PAIRS_PER_LINE = 100  # productVariantAppendMedia: at most 100 variant-media pairs per call


PHASE2_PAYLOAD_FIELDS = {
    VARIANT_DETACH_DOCUMENT: "productVariantDetachMedia",
    VARIANT_MEDIA_DOCUMENT: "productVariantAppendMedia",
    REORDER_DOCUMENT: "productReorderMedia",
}


def product_id_of(
    resolved: ResolvedGroup | None, phase1: tuple[OperationRecord | None, LineResult] | None
) -> str | None:
    """The group's product id: resolved from the shop, or returned by the line that created it."""
    if resolved is not None and resolved.product_id:
        return resolved.product_id
    return phase1[1].product_id if phase1 else None


def pick_products(
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


def media_by_key(
    group: PlanRecord, product: ExportedProduct, resolved: ResolvedGroup | None
) -> dict[str, ExportedMedia]:
    """The product's media for each planned S3 key, by id or file name: the
    media id resolved before phase 1 (kept or adopted), else the newest media named for that S3
    object (bulkimg's name on a product it created, the S3 file's name on one it appended to),
    never a copy the run deleted; a media not processed yet has no name to read and is matched
    by the alt text bulkimg gave it."""
    known = resolved.media_of if resolved else {}
    dropped = set(resolved.dropped) if resolved else set()
    live = sorted((m for m in product.media if m.id not in dropped), key=lambda m: gid_number(m.id))
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


def gid_number(gid: str) -> int:
    tail = gid.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class Phase2Line(NamedTuple):
    """One line of phase 2 and its result."""

    document: str
    variables: Phase2Variables
    result: LineResult
    file: str
    line: int  # 1-based


class VariantImage(NamedTuple):
    """A variant image phase 2 attaches, and the image it detaches first (None: shows none)."""

    variant_id: str
    media_id: str
    detach: str | None


def wanted_pairs(
    group: PlanRecord, product: ExportedProduct, resolved: ResolvedGroup | None, replace_all: bool
) -> list[VariantImage]:
    """The variant images to attach (shop/variantimages.py says which variants get one): each
    variant's primary image, or the new copy of the image of its own Image_SKU it showed
    before this run replaced it. Only READY images: Shopify refuses the others."""
    media = media_by_key(group, product, resolved)
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


def variant_media_lines(product_id: str, pairs: list[tuple[str, str]]) -> list[VariantMediaLine]:
    """Lines of productVariantAppendMedia/DetachMedia: at most 100 pairs each."""
    return [
        VariantMediaLine(
            product_id=product_id,
            variant_media=[
                VariantMediaPair(variant_id=v, media_ids=[m])
                for v, m in pairs[start : start + MAX_PAIRS_PER_LINE]
            ],
        )
        for start in range(0, len(pairs), MAX_PAIRS_PER_LINE)
    ]


def phase2_product_id(variables: Phase2Variables) -> str:
    """The product a phase 2 line is about."""
    return variables.product_id if isinstance(variables, VariantMediaLine) else variables.id


def phase2_lines(state: RunState, *phases: Phase) -> Iterator[Phase2Line]:
    """Every input line of the operations of `phases`, with its result."""
    for phase in phases:
        for op in state.ops(phase):
            results = read_line_results(op, PHASE2_PAYLOAD_FIELDS[op.document])
            name = Path(op.input_file).name
            for number, variables in enumerate(read_lines(Path(op.input_file), op.document)):
                if not isinstance(variables, VariantMediaLine | ReorderMediaLine):
                    raise AssertionError(f"{name}: {op.document} is not a phase 2 document")
                yield Phase2Line(op.document, variables, results[number], name, number + 1)


def detached_pairs(state: RunState) -> set[tuple[str, str]]:
    """(variant id, media id) pairs the run's detach lines detached."""
    return {
        (pair.variant_id, pair.media_ids[0])
        for entry in phase2_lines(state, Phase.VARIANT_DETACH)
        if entry.result.ok and isinstance(entry.variables, VariantMediaLine)
        for pair in entry.variables.variant_media
    }
