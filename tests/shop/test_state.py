"""Unit tests of shop/state.py and formats/state.py: the images of a product on the shop told
apart (bulkimg's by the file name it gave, else someone else's), and a whole export recorded in
the state file (`bulkimg reconcile`). Exports are written by hand; no shop."""

from __future__ import annotations

from pathlib import Path

import orjson

from bulkimg.formats.state import KnownMedia, StateStore
from bulkimg.shop.state import identify, states_of_export

PRODUCT = "gid://shopify/Product/1"
VARIANT = "gid://shopify/ProductVariant/{}"
CDN = "https://cdn.shopify.com/s/files/1/0001/files/{}"


def test_a_file_named_by_bulkimg_is_known_by_image_sku_variation_and_etag() -> None:
    known = identify("m1", "", "READY", CDN.format("1102192-2a-100--b006dc28.jpg?v=3"))
    assert known == KnownMedia("m1", "1102192", 2, "b006dc28", "READY")
    assert known.ours and known.same_object("1102192", 2, "b006dc28ffff")
    assert not known.same_object("1102192", 2, "c006dc28")


def test_a_file_of_another_name_is_not_bulkimgs_even_with_a_default_alt() -> None:
    known = identify("m2", "1102192 - Image 1", "READY", CDN.format("IMG_0042.jpg"))
    assert not known.ours


def test_an_image_without_a_url_yet_is_known_by_its_default_alt_with_no_etag() -> None:
    known = identify("m3", "1102192 - Image 1", "PROCESSING", None)
    assert (known.image_sku, known.variation, known.etag) == ("1102192", 1, None)
    assert not known.same_object("1102192", 1, "b006dc28")  # replaced, never kept on trust


def write_export(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    return path


def test_a_whole_export_replaces_what_the_state_file_knew(tmp_path: Path) -> None:
    ours = CDN.format("1102192-1a-100--b006dc28.jpg")
    export = write_export(tmp_path / "export.jsonl", [
        # Children before their parents: the rows of a bulk export come in any order.
        {"id": "gid://shopify/MediaImage/11", "__parentId": PRODUCT, "alt": "x",
         "status": "READY", "image": {"url": ours}},
        {"id": "gid://shopify/MediaImage/12", "__parentId": PRODUCT, "alt": "hand",
         "status": "READY", "image": {"url": CDN.format("hand.jpg")}},
        {"id": VARIANT.format(1), "__parentId": PRODUCT, "sku": "A-1"},
        {"id": "gid://shopify/MediaImage/11", "__parentId": VARIANT.format(1)},
        {"id": VARIANT.format(2), "__parentId": PRODUCT, "sku": "A-2"},
        {"id": PRODUCT, "handle": "ring-1"},
    ])  # fmt: skip
    with StateStore(tmp_path / "state.sqlite", "shop.example") as store:
        store.replace_all(states_of_export(write_export(tmp_path / "old.jsonl", [
            {"id": "gid://shopify/Product/9", "handle": "gone"},
        ])))  # fmt: skip
        counts = store.replace_all(states_of_export(export))
        assert counts == {"products": 1, "media": 2, "variants": 2}
        assert store.product("gone") is None
        state = store.product("ring-1")
    assert state is not None and state.product_id == PRODUCT
    assert [(m.media_id, m.ours) for m in state.media] == [
        ("gid://shopify/MediaImage/11", True),
        ("gid://shopify/MediaImage/12", False),
    ]
    assert state.variants == {
        "A-1": (VARIANT.format(1), "gid://shopify/MediaImage/11"),
        "A-2": (VARIANT.format(2), None),
    }
