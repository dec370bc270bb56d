"""Which image a variant of a product that exists ends up showing.

The spec gives every variant the primary image of its Image_SKU. On a shop where people have
worked, a variant may already show something else, and bulkimg changes it only when the image
is bulkimg's and is not one of the variant's own images:

- it shows nothing (or a copy the run deletes): it gets its primary image (*set*);
- it shows its primary image already: nothing to do (*right*);
- it shows one of bulkimg's images of **another** Image_SKU (the catalog moved the variant to
  another image set): that image is detached, then the primary one attached (*swap*);
- it shows another image of its own Image_SKU (a merchant's pick of an angle or a metal) or an
  image bulkimg does not own (a lifestyle photo): it is left alone and counted (*keep*).

With `--replace-variant-images` (BULKIMG_REPLACE_VARIANT_IMAGES) every variant that shows any
other image is swapped to its primary image: the user asks for the spec's rule everywhere.

A variant shows at most one image (Shopify refuses a second: PRODUCT_VARIANT_ALREADY_HAS_MEDIA),
so a swap is two steps: productVariantDetachMedia, then productVariantAppendMedia once the
detach has succeeded.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Choice(StrEnum):
    SET = "set"  # shows nothing: the primary image is attached
    RIGHT = "right"  # shows its primary image already
    SWAP = "swap"  # bulkimg's image of another Image_SKU (or any, when asked): detach, attach
    KEEP = "keep"  # a pick within its own image set, or an image bulkimg does not own


def choose(
    image_sku: str,
    primary: str | None,
    shown: str | None,
    own: Mapping[str, str],
    replace_all: bool = False,
) -> Choice:
    """What to do with one variant.

    `primary`: the media id of the variant's primary image (None: not on the product yet);
    `shown`: the media id it shows now, or None (a copy the run deletes counts as None);
    `own`: bulkimg's media on the product, media id -> the Image_SKU it is an image of.
    """
    if shown is None:
        return Choice.SET
    if primary is not None and shown == primary:
        return Choice.RIGHT
    if replace_all:
        return Choice.SWAP
    theirs = own.get(shown)
    if theirs is None or theirs == image_sku:
        return Choice.KEEP
    return Choice.SWAP
