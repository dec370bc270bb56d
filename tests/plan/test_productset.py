"""Unit tests of plan/productset.py: a plan -> the productSet variables of one JSONL line.

Pure: plans are built by hand, URLs come from a stand-in for the presigner, and lines are
validated against the shipped subset of the Admin schema (no shop, no S3).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from bulkimg.formats.lines import ProductSetLine, dump_line, parse_line
from bulkimg.models import GroupPlan, PlannedImage, PlannedVariant
from bulkimg.plan.productset import PRODUCT_SET_DOCUMENT, LineRules, productset_variables
from bulkimg.shopify.documents import load_document, subset_schema, validate_operation

FOLDER = "sorted-media/82/77/49/"


def url(key: str) -> str:
    """A stand-in for the presigned GET URL of an S3 key."""
    return f"https://bucket.s3.amazonaws.com/{key}?X-Amz-Signature=abc"


def image(position: int, image_sku: str, variation: int, etag: str) -> PlannedImage:
    s3_key = f"{FOLDER}{image_sku}-{variation}a-1234{variation}.jpg"
    return PlannedImage(position, image_sku, variation, s3_key, etag, 1200, 1200,
                        f"{image_sku} - Image {variation}", 50_000)  # fmt: skip


def plan(media: list[PlannedImage], skus: tuple[str, ...] = ("827748", "827753")) -> GroupPlan:
    first = media[0].s3_key if media else None
    variants = [PlannedVariant(sku, "827749", first) for sku in skus]
    return GroupPlan("LGD-101792", "lgd-101792", "Gold ring", media, variants, [])


def productset_json(
    group: GroupPlan, source_url: Callable[[str], str], rules: LineRules
) -> dict[str, Any]:
    """The line of `group` as Shopify gets it (its JSON)."""
    data: dict[str, Any] = orjson.loads(dump_line(productset_variables(group, source_url, rules)))
    return data


TWO_IMAGES = [
    image(1, "827749", 1, "b006dc28aa11bb22cc33dd44ee55ff66"),
    image(2, "827749", 2, "0123456789abcdef0123456789abcdef-3"),
]


def test_a_line_is_identified_by_the_handle_and_holds_the_product_input() -> None:
    line = productset_json(plan(TWO_IMAGES), url, LineRules())

    assert set(line) == {"identifier", "input"}
    assert line["identifier"] == {"handle": "lgd-101792"}
    product = line["input"]
    assert isinstance(product, dict)
    assert (product["handle"], product["title"]) == ("lgd-101792", "Gold ring")


def test_the_create_form_sends_only_handle_title_one_option_variants_and_files() -> None:
    product = productset_json(plan(TWO_IMAGES), url, LineRules())["input"]

    assert isinstance(product, dict)
    assert set(product) == {"handle", "title", "productOptions", "variants", "files"}
    for never in ("status", "descriptionHtml", "tags", "metafields", "vendor", "productType"):
        assert never not in product


def test_one_option_tells_the_variants_apart_by_sku_in_catalog_order() -> None:
    product = productset_json(plan(TWO_IMAGES, ("B2", "A1", "C3")), url, LineRules())["input"]

    assert isinstance(product, dict)
    assert product["productOptions"] == [
        {"name": "SKU", "values": [{"name": "B2"}, {"name": "A1"}, {"name": "C3"}]}
    ]


def test_a_variant_carries_only_its_sku_and_option_value_no_price_or_inventory() -> None:
    product = productset_json(plan(TWO_IMAGES), url, LineRules())["input"]

    assert isinstance(product, dict)
    assert product["variants"] == [
        {"sku": "827748", "optionValues": [{"optionName": "SKU", "name": "827748"}]},
        {"sku": "827753", "optionValues": [{"optionName": "SKU", "name": "827753"}]},
    ]


def test_the_option_name_comes_from_the_rules() -> None:
    product = productset_json(plan(TWO_IMAGES, ("A1",)), url, LineRules("Style"))["input"]

    assert isinstance(product, dict)
    assert product["productOptions"] == [{"name": "Style", "values": [{"name": "A1"}]}]
    assert product["variants"] == [
        {"sku": "A1", "optionValues": [{"optionName": "Style", "name": "A1"}]}
    ]


def test_files_are_the_plan_media_in_order_by_url_with_alt_and_image_type() -> None:
    product = productset_json(plan(TWO_IMAGES), url, LineRules())["input"]

    assert isinstance(product, dict)
    assert product["files"] == [
        {
            "originalSource": url(f"{FOLDER}827749-1a-12341.jpg"),
            "alt": "827749 - Image 1",
            "contentType": "IMAGE",
            "filename": "827749-1a-12341--b006dc28.jpg",
        },
        {
            "originalSource": url(f"{FOLDER}827749-2a-12342.jpg"),
            "alt": "827749 - Image 2",
            "contentType": "IMAGE",
            "filename": "827749-2a-12342--01234567.jpg",
        },
    ]


def test_each_file_url_is_asked_for_its_own_s3_key_once() -> None:
    asked: list[str] = []

    def source_url(key: str) -> str:
        asked.append(key)
        return url(key)

    productset_variables(plan(TWO_IMAGES), source_url, LineRules())

    assert asked == [f"{FOLDER}827749-1a-12341.jpg", f"{FOLDER}827749-2a-12342.jpg"]


def test_a_group_with_no_usable_image_sends_no_files_key_at_all() -> None:
    # An empty list would tell productSet to remove every image the product has.
    product = productset_json(plan([]), url, LineRules())["input"]

    assert isinstance(product, dict)
    assert "files" not in product


def test_the_line_is_json_serialisable_as_written() -> None:
    line = productset_variables(plan(TWO_IMAGES), url, LineRules())

    assert isinstance(line, ProductSetLine)
    assert parse_line(PRODUCT_SET_DOCUMENT, dump_line(line)) == line


@pytest.mark.parametrize("media", [TWO_IMAGES, []], ids=["with-files", "without-files"])
def test_the_line_validates_against_the_admin_schema_subset(media: list[PlannedImage]) -> None:
    line = productset_json(plan(media), url, LineRules())

    errors = validate_operation(subset_schema(), load_document(PRODUCT_SET_DOCUMENT), line)

    assert errors == []


def test_the_schema_check_would_catch_a_field_productset_does_not_know() -> None:
    # The validation above can fail: the same line with one unknown variant field does.
    line = productset_json(plan(TWO_IMAGES), url, LineRules())
    product = line["input"]
    assert isinstance(product, dict)
    variants = product["variants"]
    assert isinstance(variants, list)
    variants[0]["colour"] = "gold"

    errors = validate_operation(subset_schema(), load_document(PRODUCT_SET_DOCUMENT), line)

    assert len(errors) == 1
    assert "unknown field 'colour'" in errors[0]
