"""canary: a `submit --limit N` proves from the exports before and after that its products
changed in their images only; any other change is reported, by group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from bulkimg.formats.plan import PlanMedia, PlanRecord
from bulkimg.shop.canary import _changes, canary_problems
from bulkimg.shopify.results import ExportedMedia, ExportedProduct, ExportedVariant

PRODUCT = "gid://shopify/Product/1"
CDN = "https://cdn.shopify.com/s/files/1/0001/files"
KEY = "sorted-media/11/02/19/1102192-1a-101.jpg"


def fields(**values: Any) -> str:
    return orjson.dumps(values, option=orjson.OPT_SORT_KEYS).decode()


def variant(vid: int, sku: str, **values: Any) -> ExportedVariant:
    row = {"sku": sku, "price": "10.00", "barcode": "400", **values}
    return ExportedVariant(f"gid://shopify/ProductVariant/{vid}", sku, fields=fields(**row))


def image(mid: int, name: str) -> ExportedMedia:
    url = f"{CDN}/{name}"
    return ExportedMedia(f"gid://shopify/MediaImage/{mid}", "", "READY", url, [], 1200, 1200)


def product(
    media: list[ExportedMedia] | None = None,
    variants: list[ExportedVariant] | None = None,
    **values: Any,
) -> ExportedProduct:
    row = {"handle": "bag", "title": "Bag", "status": "ACTIVE", "tags": ["a"], **values}
    if variants is None:
        variants = [variant(1, "1102192-S"), variant(2, "1102192-M")]
    return ExportedProduct(PRODUCT, "bag", media or [], variants, fields(**row))


PLANNED = PlanMedia(
    position=1, s3_key=KEY, image_sku="1102192", variation=1,
    width=1200, height=1200, etag="b006dc28aa11", alt="1102192 - Image 1",
)  # fmt: skip
PLAN = PlanRecord(group_id="G1", handle="bag", title="Bag", status="planned", media=[PLANNED])
OWN = image(1, "1102192-1a-101.jpg")  # the old workflow's upload of the planned image
FOREIGN = image(9, "lifestyle.jpg")


def test_a_product_whose_images_alone_changed_has_no_problem() -> None:
    before = product(media=[OWN, FOREIGN])
    after = product(media=[image(2, "1102192-1a-101--b006dc28.jpg"), FOREIGN])
    assert _changes(PLAN, before, after) == []


def test_each_changed_product_field_is_named_once_in_name_order() -> None:
    after = product(title="Bag!", tags=["a", "b"], vendor="New")
    assert _changes(PLAN, product(), after) == [
        f"bag ({PRODUCT}): tags changed",
        f"bag ({PRODUCT}): title changed",
        f"bag ({PRODUCT}): vendor changed",
    ]


def test_a_product_gone_from_the_shop_is_reported_alone() -> None:
    assert _changes(PLAN, product(), None) == [f"bag ({PRODUCT}): no longer on the shop"]


def test_a_changed_variant_field_names_the_variant_by_its_sku() -> None:
    after = product(variants=[variant(1, "1102192-S", price="12.00"), variant(2, "1102192-M")])
    assert _changes(PLAN, product(), after) == [f"bag ({PRODUCT}): variant 1102192-S price changed"]


def test_variants_replaced_by_others_are_reported_with_their_counts() -> None:
    after = product(variants=[variant(3, "1102192-S"), variant(4, "1102192-M"), variant(5, "L")])
    assert _changes(PLAN, product(), after) == [
        f"bag ({PRODUCT}): variants replaced (2 before, 3 after)"
    ]


def test_a_variant_field_that_appears_or_disappears_counts_as_changed() -> None:
    before = product(variants=[variant(1, "1102192-S", inventoryQuantity=3)])
    after = product(variants=[variant(1, "1102192-S", compareAtPrice="15.00")])
    assert _changes(PLAN, before, after) == [
        f"bag ({PRODUCT}): variant 1102192-S compareAtPrice changed",
        f"bag ({PRODUCT}): variant 1102192-S inventoryQuantity changed",
    ]


def test_a_foreign_image_that_is_gone_is_reported_and_bulkimgs_own_is_not() -> None:
    before = product(media=[OWN, FOREIGN, image(8, "box.png")])
    after = product(media=[image(8, "box.png")])
    assert _changes(PLAN, before, after) == [
        f"bag ({PRODUCT}): image {FOREIGN.id} (not bulkimg's) is gone"
    ]


# -- canary_problems: from the export files ----------------------------------------------------


def export_file(path: Path, title: str = "Bag", pid: str = PRODUCT, handle: str = "bag") -> Path:
    """A bulk export holding one product (with one variant) as Shopify writes it."""
    vid = pid.replace("/Product/", "/ProductVariant/")
    rows = [
        {"id": pid, "handle": handle, "title": title, "status": "ACTIVE"},
        {"id": vid, "__parentId": pid, "sku": "S", "price": "1.00"},
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_problems_are_keyed_by_the_group_id_and_empty_when_nothing_changed(
    tmp_path: Path,
) -> None:
    before = export_file(tmp_path / "before.jsonl")
    same = export_file(tmp_path / "same.jsonl")
    changed = export_file(tmp_path / "changed.jsonl", title="Other")
    assert canary_problems(before, [same], [(PLAN, PRODUCT)]) == {}
    assert canary_problems(before, [changed], [(PLAN, PRODUCT)]) == {
        "G1": [f"bag ({PRODUCT}): title changed"]
    }


def test_a_product_created_by_the_run_is_not_compared(tmp_path: Path) -> None:
    before = export_file(tmp_path / "before.jsonl")
    after = export_file(tmp_path / "after.jsonl", pid="gid://shopify/Product/2", handle="new")
    assert canary_problems(before, [after], [(PLAN, "gid://shopify/Product/2")]) == {}


def test_the_later_export_holds_the_newer_view_of_a_product(tmp_path: Path) -> None:
    before = export_file(tmp_path / "before.jsonl")
    first = export_file(tmp_path / "first.jsonl", title="Draft")
    later = export_file(tmp_path / "later.jsonl")
    assert canary_problems(before, [first, later], [(PLAN, PRODUCT)]) == {}
    assert canary_problems(before, [later, first], [(PLAN, PRODUCT)]) == {
        "G1": [f"bag ({PRODUCT}): title changed"]
    }


def test_a_product_missing_from_every_later_export_is_no_longer_on_the_shop(
    tmp_path: Path,
) -> None:
    before = export_file(tmp_path / "before.jsonl")
    other = export_file(tmp_path / "o.jsonl", pid="gid://shopify/Product/2", handle="o")
    assert canary_problems(before, [other], [(PLAN, PRODUCT)]) == {
        "G1": [f"bag ({PRODUCT}): no longer on the shop"]
    }
