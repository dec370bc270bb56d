"""productSet variables for one product (one JSONL line of the bulk mutation).

productSet replaces list fields: listed entries are created or updated, entries not listed are
deleted; fields left out stay as they are. So a line lists every file the product should keep,
in order — images already there by media id, new ones by URL, images bulkimg did not upload
last — and leaves `files` out entirely when the group has no usable image (an image that is
missing today must not wipe the product's media). See docs/formats.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from bulkimg.models import GroupPlan
from bulkimg.shopname import shopify_filename

PRODUCT_SET_DOCUMENT = "product_set"


@dataclass(frozen=True, slots=True)
class LineRules:
    """How product fields other than media are written."""

    variants_mode: Literal["catalog", "omit"] = "catalog"
    option_name: str = "SKU"


def productset_variables(
    plan: GroupPlan, source_url: Callable[[str], str], rules: LineRules
) -> dict[str, object]:
    """The variables of graphql/product_set.graphql for `plan`; `source_url` maps an S3 key to a
    URL Shopify can fetch (a presigned GET)."""
    product: dict[str, object] = {"handle": plan.handle}
    if rules.variants_mode == "catalog":
        product["title"] = plan.title
        product["productOptions"] = [
            {"name": rules.option_name, "values": [{"name": v.sku} for v in plan.variants]}
        ]
        product["variants"] = [
            {"sku": v.sku, "optionValues": [{"optionName": rules.option_name, "name": v.sku}]}
            for v in plan.variants
        ]
    if plan.media:
        files: list[dict[str, object]] = [
            {"id": plan.keep_media[m.s3_key], "alt": m.alt}
            if m.s3_key in plan.keep_media
            else {
                "originalSource": source_url(m.s3_key),
                "alt": m.alt,
                "contentType": "IMAGE",
                "filename": shopify_filename(m.s3_key, m.etag),
            }
            for m in plan.media
        ]
        files.extend({"id": media_id} for media_id in plan.foreign_media)
        product["files"] = files
    return {"identifier": {"handle": plan.handle}, "input": product}
