"""What each product on the shop holds, as the state file records it: every image identified as
bulkimg's (its Image_SKU, variation and S3 ETag, from the file name bulkimg gave it, see
plan/names.py; while a new image has no URL yet, from the default alt text, with no ETag) or
someone else's."""

from __future__ import annotations

import re
from pathlib import Path

from bulkimg.formats.plan import PlanRecord
from bulkimg.formats.state import KnownMedia, ProductState
from bulkimg.plan.names import filename_of_url, parse_shopify_filename
from bulkimg.shopify.results import ExportedProduct, read_export


def states_of_export(path: Path) -> list[ProductState]:
    """Every product of a bulk export of the shop, as `bulkimg reconcile` records it."""
    return [product_state(product) for product in read_export(path).values()]


_DEFAULT_ALT = re.compile(r"(?P<sku>[A-Za-z0-9_-]+) - Image (?P<variation>\d+)")


def identify(media_id: str, alt: str, status: str, url: str | None) -> KnownMedia:
    """An image on the shop as bulkimg's (by its file name, or, while it has no URL yet, by the
    default alt text — then with no ETag, so it is replaced rather than kept) or not."""
    parsed = parse_shopify_filename(filename_of_url(url))
    if parsed is not None:
        return KnownMedia(media_id, parsed.image_sku, parsed.variation, parsed.etag, status)
    by_alt = _DEFAULT_ALT.fullmatch(alt) if url is None else None
    if by_alt is not None:
        return KnownMedia(media_id, by_alt["sku"], int(by_alt["variation"]), None, status)
    return KnownMedia(media_id, None, None, None, status)


def _alt_of(known: KnownMedia, product: ExportedProduct) -> str:
    return next((m.alt for m in product.media if m.id == known.media_id), "")


def product_state(product: ExportedProduct, plan: PlanRecord | None = None) -> ProductState:
    """What a product on the shop holds, each image identified as bulkimg's or not.

    An image is bulkimg's when the plan lists its alt text (then its S3 key and full ETag are
    known) or when its file name parses as one bulkimg gave (see plan/names.py).
    """
    by_alt = {m.alt: m for m in plan.media} if plan else {}
    position = {m.alt: m.position for m in plan.media} if plan else {}
    media: list[KnownMedia] = []
    for m in product.media:
        planned = by_alt.get(m.alt)
        known = identify(m.id, m.alt, m.status, m.url)
        if planned is not None and known.image_sku in (None, planned.image_sku):
            # The file name tells the S3 version on the shop; the plan only what is wanted.
            same = known.etag is not None and planned.etag.startswith(known.etag)
            etag = planned.etag if same or known.image_sku is None else known.etag
            known = KnownMedia(
                m.id, planned.image_sku, planned.variation, etag, m.status, planned.s3_key
            )
        media.append(known)
    # A bulk export does not give the order: ours are where the plan put them, others after.
    media.sort(key=lambda k: position.get(_alt_of(k, product), len(position) + 1))
    variants = {
        v.sku: (v.id, v.media_ids[0] if v.media_ids else None) for v in product.variants if v.sku
    }
    return ProductState(product.handle, product.id, media, variants)
