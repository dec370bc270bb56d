"""productSet variables for one product (one JSONL line of the bulk mutation).

The build does not know the shop: it writes each group's line as the productSet that would
create it. Submit rewrites it against the shop (shop/resolve.py). `files` is left out entirely when
the group has no usable image (an image that is missing today must not wipe the product's
media). See docs/formats.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bulkimg.formats.lines import (
    PRODUCT_SET,
    FileSetInput,
    OptionValue,
    ProductOption,
    ProductSetIdentifier,
    ProductSetLine,
    ProductSetProduct,
    ProductSetVariant,
    VariantOptionValue,
)
from bulkimg.models import GroupPlan
from bulkimg.plan.names import shopify_filename

PRODUCT_SET_DOCUMENT = PRODUCT_SET


@dataclass(frozen=True, slots=True)
class LineRules:
    """How a product bulkimg creates is described: one option telling its variants apart."""

    option_name: str = "SKU"


def productset_variables(
    plan: GroupPlan, source_url: Callable[[str], str], rules: LineRules
) -> ProductSetLine:
    """The line of bulkimg/documents/product_set.graphql for `plan` in its *create* form (title,
    option, variants, every image by URL); `source_url` maps an S3 key to a URL Shopify can
    fetch (a presigned GET). Submit rewrites the line against the shop (shop/resolve.py): a product
    that exists gets its images only."""
    option = rules.option_name
    files = [
        FileSetInput(
            original_source=source_url(m.s3_key),
            alt=m.alt,
            filename=shopify_filename(m.s3_key, m.etag),
        )
        for m in plan.media
    ]
    product = ProductSetProduct(
        handle=plan.handle,
        title=plan.title,
        product_options=[
            ProductOption(name=option, values=[OptionValue(name=v.sku) for v in plan.variants])
        ],
        variants=[
            ProductSetVariant(
                sku=v.sku, option_values=[VariantOptionValue(option_name=option, name=v.sku)]
            )
            for v in plan.variants
        ],
        files=files or None,  # left out: no image must never wipe the product's media
    )
    return ProductSetLine(identifier=ProductSetIdentifier(handle=plan.handle), input=product)
