"""Unit tests of run/phase2.py: which media on the product is each planned image (by resolved id,
then by file name, then, while it has no URL, by alt text), which variant images phase 2 attaches
or swaps, its lines of at most 100 pairs, and reading its results back.

Products, plans and result files are built by hand; no shop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from bulkimg.formats.lines import (
    MoveInput,
    ReorderMediaLine,
    VariantMediaLine,
    VariantMediaPair,
    write_lines,
)
from bulkimg.formats.plan import PlanMedia, PlanRecord, PlanVariant
from bulkimg.formats.resolution import ResolvedGroup
from bulkimg.formats.run import OperationRecord, Phase, RunState
from bulkimg.plan.names import shopify_filename
from bulkimg.run import phase2
from bulkimg.shopify.results import ExportedMedia, ExportedProduct, ExportedVariant, LineResult

CDN = "https://cdn.shopify.com/s/files/1/0001/files"
PRODUCT = "gid://shopify/Product/1"
KEY1 = "sorted-media/82/77/49/827749-1a-111.jpg"  # 827749's primary image
KEY2 = "sorted-media/82/77/49/827749-2a-222.jpg"  # another image of 827749
KEY3 = "sorted-media/90/00/01/900001-1a-333.jpg"  # 900001's primary image
ETAGS = {KEY1: "e1" * 8, KEY2: "e2" * 8, KEY3: "e3" * 8}
UUID = "_0a1b2c3d-1111-2222-3333-444455556666"


def mid(n: int) -> str:
    return f"gid://shopify/MediaImage/{n}"


def vid(n: int) -> str:
    return f"gid://shopify/ProductVariant/{n}"


def alt_of(key: str) -> str:
    name = key.rpartition("/")[2]
    return f"{name.split('-')[0]} - Image {name.split('-')[1][0]}"


def named(key: str) -> str:
    """bulkimg's file name for `key` on Shopify."""
    return shopify_filename(key, ETAGS[key])


def plan(variants: list[PlanVariant] | None = None) -> PlanRecord:
    media = [
        PlanMedia(position=i, s3_key=k, image_sku=k.rpartition("/")[2].split("-")[0],
                  variation=int(k.rpartition("/")[2].split("-")[1][0]), width=900, height=900,
                  etag=ETAGS[k], alt=alt_of(k))
        for i, k in enumerate((KEY1, KEY2, KEY3), start=1)
    ]  # fmt: skip
    if variants is None:
        variants = [
            PlanVariant(sku="A1", image_sku="827749", image_s3_key=KEY1),
            PlanVariant(sku="B1", image_sku="900001", image_s3_key=KEY3),
        ]
    return PlanRecord(group_id="LGD-1", handle="lgd-1", title="Ring", status="planned",
                      media=media, variants=variants)  # fmt: skip


def media(n: int, name: str | None, alt: str = "", status: str = "READY") -> ExportedMedia:
    return ExportedMedia(mid(n), alt, status, f"{CDN}/{name}?v=1" if name else None)


def product(
    items: list[ExportedMedia], variants: list[ExportedVariant] | None = None
) -> ExportedProduct:
    return ExportedProduct(PRODUCT, "lgd-1", items, variants or [])


def resolved(**fields: Any) -> ResolvedGroup:
    return ResolvedGroup(group_id="LGD-1", handle="lgd-1", action="update", match="handle",
                         product_id=PRODUCT, **fields)  # fmt: skip


def ids(found: dict[str, ExportedMedia]) -> dict[str, str]:
    return {key: m.id for key, m in found.items()}


# -- media_by_key ----------------------------------------------------------------------------------


def test_a_media_is_matched_by_its_resolved_id_before_a_newer_one_with_its_name() -> None:
    shop = product([media(3, "827749-1a-111.jpg"), media(9, named(KEY1))])
    found = phase2.media_by_key(plan(), shop, resolved(media_of={KEY1: mid(3)}))
    assert ids(found) == {KEY1: mid(3)}


def test_without_a_resolved_id_bulkimgs_name_is_matched_before_the_s3_files_name() -> None:
    shop = product([media(3, named(KEY1)), media(20, "827749-1a-111.jpg")])
    assert ids(phase2.media_by_key(plan(), shop, None)) == {KEY1: mid(3)}


def test_the_s3_files_name_is_matched_on_a_product_bulkimg_appended_to() -> None:
    shop = product([media(4, "827749-2a-222.jpg"), media(5, "lifestyle.jpg")])
    assert ids(phase2.media_by_key(plan(), shop, None)) == {KEY2: mid(4)}


def test_a_shopify_clash_suffix_does_not_hide_a_files_name() -> None:
    clashed = named(KEY1).replace(".jpg", f"{UUID}.jpg")
    shop = product([media(6, clashed)])
    assert ids(phase2.media_by_key(plan(), shop, None)) == {KEY1: mid(6)}


def test_the_newest_media_with_a_name_wins_by_id_number_not_by_export_order() -> None:
    shop = product([media(10, named(KEY1)), media(9, named(KEY1)), media(2, named(KEY1))])
    assert ids(phase2.media_by_key(plan(), shop, None)) == {KEY1: mid(10)}


def test_a_copy_the_run_deleted_is_never_matched_by_name() -> None:
    shop = product([media(4, "827749-1a-111.jpg"), media(9, named(KEY1))])
    found = phase2.media_by_key(plan(), shop, resolved(dropped=[mid(9)]))
    assert ids(found) == {KEY1: mid(4)}


def test_a_copy_the_run_deleted_is_never_matched_even_by_its_resolved_id() -> None:
    shop = product([media(9, named(KEY1))])
    found = phase2.media_by_key(plan(), shop, resolved(media_of={KEY1: mid(9)}, dropped=[mid(9)]))
    assert found == {}


def test_a_resolved_id_no_longer_on_the_product_falls_back_to_the_name() -> None:
    shop = product([media(7, named(KEY2))])
    found = phase2.media_by_key(plan(), shop, resolved(media_of={KEY2: mid(99)}))
    assert ids(found) == {KEY2: mid(7)}


def test_an_unprocessed_image_without_a_url_is_matched_by_its_alt_text() -> None:
    shop = product([media(8, None, alt=alt_of(KEY2), status="UPLOADED")])
    assert ids(phase2.media_by_key(plan(), shop, None)) == {KEY2: mid(8)}


def test_a_media_with_a_url_is_never_matched_by_alt_text() -> None:
    shop = product([media(8, "lifestyle.jpg", alt=alt_of(KEY2))])
    assert phase2.media_by_key(plan(), shop, None) == {}


def test_an_unprocessed_image_another_key_resolved_to_is_not_matched_by_alt() -> None:
    shop = product([media(5, None, alt=alt_of(KEY2), status="PROCESSING")])
    found = phase2.media_by_key(plan(), shop, resolved(media_of={KEY1: mid(5)}))
    assert ids(found) == {KEY1: mid(5)}


def test_a_named_media_is_matched_before_a_newer_unprocessed_one_with_the_alt() -> None:
    shop = product([media(8, named(KEY2)), media(9, None, alt=alt_of(KEY2))])
    assert ids(phase2.media_by_key(plan(), shop, None)) == {KEY2: mid(8)}


def test_gid_number_is_the_ids_numeric_tail_and_zero_when_there_is_none() -> None:
    assert phase2.gid_number(mid(42)) == 42
    assert phase2.gid_number("gid://shopify/MediaImage/temp") == 0


# -- product ids -----------------------------------------------------------------------------------


def test_the_resolved_product_id_wins_over_the_one_the_line_returned() -> None:
    result = LineResult(0, ran=True, product_id="gid://shopify/Product/77")
    assert phase2.product_id_of(resolved(), (None, result)) == PRODUCT


def test_a_created_products_id_is_the_one_its_productset_line_returned() -> None:
    result = LineResult(0, ran=True, product_id="gid://shopify/Product/77")
    created = resolved().model_copy(update={"product_id": None, "action": "create"})
    assert phase2.product_id_of(created, (None, result)) == "gid://shopify/Product/77"
    assert phase2.product_id_of(None, (None, LineResult(0, ran=True))) is None
    assert phase2.product_id_of(None, None) is None


def test_exported_products_are_picked_by_id_when_known_else_by_handle() -> None:
    renamed = ExportedProduct(PRODUCT, "lgd-1-renamed")
    fresh = ExportedProduct("gid://shopify/Product/2", "lgd-2")
    exported = {p.handle: p for p in (renamed, fresh)}
    targets = {"lgd-1": PRODUCT, "lgd-2": None, "lgd-3": "gid://shopify/Product/3"}
    assert phase2.pick_products(exported, targets) == {"lgd-1": renamed, "lgd-2": fresh}


# -- wanted_pairs ----------------------------------------------------------------------------------


def shop_with(a1_shows: list[str], status: str = "READY") -> ExportedProduct:
    return product(
        [media(1, named(KEY1), status=status), media(2, named(KEY2)), media(3, named(KEY3)),
         media(4, "lifestyle.jpg")],
        [ExportedVariant(vid(1), "A1", a1_shows)],
    )  # fmt: skip


def a1_only() -> PlanRecord:
    return plan([PlanVariant(sku="A1", image_sku="827749", image_s3_key=KEY1)])


def test_a_variant_showing_nothing_gets_its_primary_image_with_nothing_to_detach() -> None:
    assert phase2.wanted_pairs(a1_only(), shop_with([]), None, False) == [
        phase2.VariantImage(vid(1), mid(1), None)
    ]


def test_a_variant_showing_its_primary_image_already_gets_nothing() -> None:
    assert phase2.wanted_pairs(a1_only(), shop_with([mid(1)]), None, False) == []


def test_a_variant_showing_bulkimgs_image_of_another_image_sku_is_swapped() -> None:
    assert phase2.wanted_pairs(a1_only(), shop_with([mid(3)]), None, False) == [
        phase2.VariantImage(vid(1), mid(1), mid(3))
    ]


def test_a_variant_showing_another_image_of_its_own_image_sku_is_kept() -> None:
    assert phase2.wanted_pairs(a1_only(), shop_with([mid(2)]), None, False) == []


def test_a_variant_showing_an_image_bulkimg_does_not_own_is_kept() -> None:
    assert phase2.wanted_pairs(a1_only(), shop_with([mid(4)]), None, False) == []


def test_replacing_all_variant_images_swaps_even_a_kept_pick_and_a_foreign_image() -> None:
    assert phase2.wanted_pairs(a1_only(), shop_with([mid(2)]), None, True) == [
        phase2.VariantImage(vid(1), mid(1), mid(2))
    ]
    assert phase2.wanted_pairs(a1_only(), shop_with([mid(4)]), None, True) == [
        phase2.VariantImage(vid(1), mid(1), mid(4))
    ]


def test_an_image_that_is_not_ready_is_never_attached() -> None:
    assert phase2.wanted_pairs(a1_only(), shop_with([], status="PROCESSING"), None, False) == []
    assert phase2.wanted_pairs(a1_only(), shop_with([mid(3)], status="FAILED"), None, False) == []


def test_variants_not_on_the_product_or_without_an_image_get_nothing() -> None:
    group = plan([
        PlanVariant(sku="ZZ", image_sku="827749", image_s3_key=KEY1),
        PlanVariant(sku="A1", image_sku="827749", image_s3_key=None),
    ])  # fmt: skip
    assert phase2.wanted_pairs(group, shop_with([]), None, False) == []


def test_a_variant_that_showed_a_replaced_copy_gets_that_images_new_copy_not_its_primary() -> None:
    known = resolved(relink={vid(1): KEY2})
    assert phase2.wanted_pairs(a1_only(), shop_with([]), known, False) == [
        phase2.VariantImage(vid(1), mid(2), None)
    ]


def test_a_relink_is_ignored_for_a_variant_that_shows_an_image() -> None:
    known = resolved(relink={vid(1): KEY2})
    assert phase2.wanted_pairs(a1_only(), shop_with([mid(3)]), known, False) == [
        phase2.VariantImage(vid(1), mid(1), mid(3))
    ]


def test_a_variant_the_export_still_shows_on_a_copy_the_run_deleted_is_left_alone() -> None:
    # Its delete failed (or has not reached the export): the copy is still attached, and
    # Shopify refuses a second image on a variant, so phase 2 sends nothing for it.
    shop = product(
        [media(1, named(KEY1)), media(2, named(KEY2)), media(9, "827749-2a-222--00000000.jpg")],
        [ExportedVariant(vid(1), "A1", [mid(9)])],
    )
    known = resolved(dropped=[mid(9)], relink={vid(1): KEY2})
    assert phase2.wanted_pairs(a1_only(), shop, known, False) == []


# -- lines -----------------------------------------------------------------------------------------


def test_lines_hold_at_most_100_pairs_in_order_each_of_one_media() -> None:
    pairs = [(vid(n), mid(n)) for n in range(250)]
    lines = phase2.variant_media_lines(PRODUCT, pairs)
    assert phase2.MAX_PAIRS_PER_LINE == 100
    assert [len(line.variant_media) for line in lines] == [100, 100, 50]
    assert {line.product_id for line in lines} == {PRODUCT}
    flat = [(p.variant_id, p.media_ids) for line in lines for p in line.variant_media]
    assert flat == [(v, [m]) for v, m in pairs]


def test_exactly_100_pairs_make_one_line_and_none_make_no_line() -> None:
    assert len(phase2.variant_media_lines(PRODUCT, [(vid(n), mid(n)) for n in range(100)])) == 1
    assert phase2.variant_media_lines(PRODUCT, []) == []


def test_a_phase2_lines_product_is_its_product_id_or_the_reordered_products_id() -> None:
    attach = VariantMediaLine(product_id=PRODUCT, variant_media=[])
    reorder = ReorderMediaLine(id="gid://shopify/Product/5", moves=[])
    assert phase2.phase2_product_id(attach) == PRODUCT
    assert phase2.phase2_product_id(reorder) == "gid://shopify/Product/5"


# -- reading results back --------------------------------------------------------------------------


def pair_line(*numbers: int) -> VariantMediaLine:
    return VariantMediaLine(
        product_id=PRODUCT,
        variant_media=[VariantMediaPair(variant_id=vid(n), media_ids=[mid(n)]) for n in numbers],
    )


def op_of(
    tmp_path: Path, phase: Phase, document: str, lines: list[Any], results: list[dict[str, Any]]
) -> OperationRecord:
    source = tmp_path / f"{document}.jsonl"
    write_lines(source, lines)
    result = tmp_path / f"{document}-result.jsonl"
    result.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in results))
    return OperationRecord(phase=phase, input_file=str(source), input_sha256="0" * 64,
                           input_lines=len(lines), document=document, status="COMPLETED",
                           result_file=str(result))  # fmt: skip


def done(number: int, field: str, errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"__lineNumber": number, "data": {field: {"userErrors": errors or []}}}


def test_only_pairs_of_detach_lines_that_succeeded_count_as_detached(tmp_path: Path) -> None:
    field = "productVariantDetachMedia"
    refused = [{"code": "INVALID", "field": ["variantMedia"], "message": "no"}]
    detach = op_of(tmp_path, Phase.VARIANT_DETACH, phase2.VARIANT_DETACH_DOCUMENT,
                   [pair_line(1, 2), pair_line(3), pair_line(4)],
                   [done(2, field), done(1, field, refused)])  # fmt: skip
    state = RunState(shop="shop.example", operations=[detach])
    assert phase2.detached_pairs(state) == {(vid(4), mid(4))}


def test_phase2_lines_come_with_their_result_file_name_and_1_based_line(tmp_path: Path) -> None:
    results = [done(1, "productVariantAppendMedia")]
    attach = op_of(tmp_path, Phase.VARIANT_MEDIA, phase2.VARIANT_MEDIA_DOCUMENT,
                   [pair_line(1), pair_line(2)], results)  # fmt: skip
    reorder_line = ReorderMediaLine(id=PRODUCT, moves=[MoveInput(id=mid(1), new_position="0")])
    errors = [{"code": "INVALID", "field": None, "message": "bad move"}]
    reorder = op_of(tmp_path, Phase.VARIANT_MEDIA, phase2.REORDER_DOCUMENT, [reorder_line],
                    [{"__lineNumber": 0,
                      "data": {"productReorderMedia": {"mediaUserErrors": errors}}}])  # fmt: skip
    state = RunState(shop="shop.example", operations=[attach, reorder])
    entries = list(phase2.phase2_lines(state, Phase.VARIANT_DETACH, Phase.VARIANT_MEDIA))
    assert [(e.document, e.file, e.line, e.result.ok) for e in entries] == [
        (phase2.VARIANT_MEDIA_DOCUMENT, "variant_append_media.jsonl", 1, False),
        (phase2.VARIANT_MEDIA_DOCUMENT, "variant_append_media.jsonl", 2, True),
        (phase2.REORDER_DOCUMENT, "product_reorder_media.jsonl", 1, False),
    ]
    assert entries[0].result.errors[0].code == "NOT_RUN"
    assert entries[2].result.errors[0].message == "bad move"
    assert entries[1].variables == pair_line(2) and entries[2].variables == reorder_line
