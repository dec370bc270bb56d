"""resolve: the build's create-form lines become, against the shop, image-only lines for products
that exist, create lines for new ones, and nothing for conflicts or products already right."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from bulkimg.formats.lines import (
    FileDeleteLine,
    Line,
    ProductRef,
    ProductSetLine,
    ProductSetProduct,
    ProductUpdateMediaLine,
    dump_line,
)
from bulkimg.formats.plan import PlanMedia, PlanRecord, PlanVariant
from bulkimg.formats.resolution import LineRef, read_resolution
from bulkimg.plan.names import shopify_filename
from bulkimg.shop.index import ShopIndex
from bulkimg.shop.resolve import (
    APPEND,
    CREATE,
    DELETE,
    ResolveRules,
    resolve_line,
    resolve_run,
)
from bulkimg.shopify.documents import load_document, validate_operation
from bulkimg.shopify.results import ExportedMedia, ExportedProduct, ExportedVariant

KEY1 = "sorted-media/82/77/49/827749-1a-111.jpg"
KEY2 = "sorted-media/82/77/49/827749-2a-222.jpg"
CDN = "https://cdn.shopify.com/s/files/1/0001/files"


def plan_record(file: str = "productset.jsonl", line: int = 1) -> PlanRecord:
    media = [
        PlanMedia(position=i, s3_key=k, image_sku="827749", variation=i, width=900, height=900,
                  etag=f"e{i}" * 8, alt=f"827749 - Image {i}")
        for i, k in ((1, KEY1), (2, KEY2))
    ]  # fmt: skip
    variants = [PlanVariant(sku=s, image_sku="827749", image_s3_key=KEY1) for s in ("A1", "A2")]
    return PlanRecord(
        group_id="LGD-1", handle="lgd-1", title="Ring", status="planned", file=file, line=line,
        media=media, variants=variants,
    )  # fmt: skip


def as_json(line: Line) -> Any:
    """A line as Shopify gets it."""
    return orjson.loads(dump_line(line))


def create_form(plan: PlanRecord) -> ProductSetLine:
    files = [
        {"originalSource": f"https://s3.test/{m.s3_key}?X-Amz-Signature=x", "alt": m.alt,
         "contentType": "IMAGE", "filename": shopify_filename(m.s3_key, m.etag)}
        for m in plan.media
    ]  # fmt: skip
    return ProductSetLine.model_validate({
        "identifier": {"handle": plan.handle},
        "input": {
            "handle": plan.handle, "title": "Ring",
            "productOptions": [{"name": "SKU", "values": [{"name": "A1"}, {"name": "A2"}]}],
            "variants": [{"sku": s, "optionValues": [{"optionName": "SKU", "name": s}]}
                         for s in ("A1", "A2")],
            "files": files,
        },
    })  # fmt: skip


def shop_product(handle: str, *media: ExportedMedia) -> ExportedProduct:
    variants = [
        ExportedVariant(f"gid://shopify/ProductVariant/{i}", s) for i, s in enumerate(["A1", "A2"])
    ]
    return ExportedProduct("gid://shopify/Product/77", handle, list(media), variants)


def image(mid: int, name: str, size: int = 900) -> ExportedMedia:
    return ExportedMedia(
        f"gid://shopify/MediaImage/{mid}", "", "READY", f"{CDN}/{name}", [], size, size
    )


def test_an_existing_product_gets_its_missing_images_appended_and_nothing_else() -> None:
    plan = plan_record()
    product = shop_product("renamed-ring", image(5, "on-model.jpg"), image(6, "827749-1a-111.jpg"))
    group, lines = resolve_line(plan, create_form(plan), ShopIndex([product]), ResolveRules())
    assert group.action == "update" and group.match == "sku" and group.product_id == product.id
    ((document, typed),) = lines  # nothing to delete: only an append, by the product's id
    line = as_json(typed)
    assert document == APPEND and set(line) == {"product", "media"}
    assert line["product"] == {"id": product.id}
    (media,) = line["media"]
    assert media["originalSource"].startswith(f"https://s3.test/{KEY2}")
    assert (group.adopted, group.uploaded, group.kept_foreign) == (1, 1, 1)
    assert group.media_of == {KEY1: product.media[1].id}


def test_an_out_of_date_copy_is_deleted_and_its_new_version_appended() -> None:
    plan = plan_record()
    stale = image(6, "827749-1a-111.jpg", size=640)
    product = shop_product("lgd-1", stale, image(7, "827749-2a-222.jpg"), image(5, "hand.jpg"))
    group, lines = resolve_line(plan, create_form(plan), ShopIndex([product]), ResolveRules())
    assert [document for document, _ in lines] == [APPEND, DELETE]
    assert as_json(lines[1][1]) == {"fileIds": [stale.id]}
    assert (group.replaced, group.uploads, group.dropped) == (1, [KEY1], [stale.id])


def test_a_product_that_already_holds_every_image_gets_no_line() -> None:
    plan = plan_record()
    product = shop_product("lgd-1", image(6, "827749-1a-111.jpg"), image(7, "827749-2a-222.jpg"))
    group, lines = resolve_line(plan, create_form(plan), ShopIndex([product]), ResolveRules())
    assert lines == [] and group.action == "unchanged" and group.adopted == 2
    assert group.media_of == {KEY1: product.media[0].id, KEY2: product.media[1].id}


def test_a_new_product_is_created_as_a_draft_without_identifier() -> None:
    plan = plan_record()
    group, lines = resolve_line(plan, create_form(plan), ShopIndex([]), ResolveRules())
    ((document, typed),) = lines
    line = as_json(typed)
    assert group.action == "create" and document == CREATE and "identifier" not in line
    assert line["input"]["status"] == "DRAFT" and line["input"]["title"] == "Ring"


def test_no_create_skips_a_new_product_and_says_so() -> None:
    plan = plan_record()
    group, lines = resolve_line(plan, create_form(plan), ShopIndex([]), ResolveRules(create=False))
    assert lines == [] and group.action == "not_created" and "--no-create" in group.detail


def test_a_conflict_sends_nothing() -> None:
    plan = plan_record()
    other = ExportedProduct("gid://shopify/Product/9", "x", [], [ExportedVariant("v", "A2")])
    products = [shop_product("lgd-1"), other]
    group, lines = resolve_line(plan, create_form(plan), ShopIndex(products), ResolveRules())
    assert lines == [] and group.action == "conflict" and "A2" in group.detail


def test_resolved_lines_validate_against_shopifys_schema(admin_schemas: list[Any]) -> None:
    plan = plan_record()
    stale = image(6, "827749-1a-111.jpg", size=640)
    product = shop_product("lgd-1", image(5, "on-model.jpg"), stale)
    _, update = resolve_line(plan, create_form(plan), ShopIndex([product]), ResolveRules())
    _, create = resolve_line(plan, create_form(plan), ShopIndex([]), ResolveRules())
    assert {document for document, _ in update + create} == {CREATE, APPEND, DELETE}
    for document, line in update + create:
        for schema in admin_schemas:
            assert validate_operation(schema, load_document(document), as_json(line)) == []


def test_resolve_run_writes_private_line_files_and_one_record_per_group(tmp_path: Path) -> None:
    plan = plan_record()
    (tmp_path / "plan.jsonl").write_bytes(plan.dump())
    build_file = tmp_path / "productset.jsonl"
    build_file.write_bytes(dump_line(create_form(plan)))
    files, resolution = resolve_run(
        tmp_path / "plan.jsonl", [build_file], None, tmp_path, "run1", ResolveRules()
    )
    (group,) = read_resolution(resolution)
    path = tmp_path / "productset-resolved-run1-product_set-productset.jsonl"
    assert files == [(path, CREATE)]
    assert group.lines == [LineRef(document=CREATE, file=path.name, line=1)]
    assert group.action == "create" and path.stat().st_mode & 0o777 == 0o600


def test_the_images_only_check_refuses_a_line_that_would_touch_more() -> None:
    from bulkimg.shop.adoption import decide
    from bulkimg.shop.resolve import check_images_only

    product = shop_product("lgd-1", image(5, "on-model.jpg"))
    decision = decide(plan_record().media, product.media)
    with pytest.raises(AssertionError, match="would delete media"):  # the merchant's photo
        delete = FileDeleteLine(file_ids=[product.media[0].id])
        check_images_only([(DELETE, delete)], product, decision)
    elsewhere = ProductUpdateMediaLine(product=ProductRef(id="gid://shopify/Product/1"), media=[])
    with pytest.raises(AssertionError, match="appends to gid://shopify/Product/1"):
        check_images_only([(APPEND, elsewhere)], product, decision)
    with pytest.raises(AssertionError, match="more than new media"):
        check_images_only([(APPEND, delete)], product, decision)
    with pytest.raises(AssertionError, match="deletes more than files"):
        check_images_only([(DELETE, elsewhere)], product, decision)
    create = ProductSetLine(
        input=ProductSetProduct(handle="x", title="x", product_options=[], variants=[], files=[])
    )
    with pytest.raises(AssertionError, match="sends product_set"):
        check_images_only([(CREATE, create)], product, decision)
