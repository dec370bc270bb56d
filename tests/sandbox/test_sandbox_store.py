"""The sandbox's SQLite model: the "keep these, delete the rest" helpers, in particular when
nothing is kept (``id NOT IN (NULL)`` matches no row: the old rows would survive)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bulkimg.sandbox.store import NewVariant, Product, Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "shop.sqlite")
    yield opened
    opened.close()


def _product(store: Store, handle: str) -> int:
    row = Product(0, handle, handle, "ACTIVE", "", "", "", (), 0.0, 0.0)
    return store.insert_product(row)


def _variant(sku: str, variant_id: int | None = None) -> NewVariant:
    return NewVariant(variant_id, 1, sku, "0.00", None, None, (("SKU", sku),))


def _filled(store: Store, handle: str) -> int:
    product_id = _product(store, handle)
    store.replace_options(product_id, [(None, "SKU", ["1", "2"])])
    store.replace_variants(product_id, [_variant("1"), _variant("2")], 0.0)
    for n in (1, 2):
        store.insert_media(product_id, n, None, f"{n}.jpg", "http://x/y.jpg", 0.0)
    return product_id


@pytest.mark.parametrize("keep_nothing", [True, False])
def test_replace_options_deletes_every_option_not_kept(store: Store, keep_nothing: bool) -> None:
    product_id, other = _filled(store, "a"), _filled(store, "b")
    old = [o.id for o in store.options(product_id)]
    kept = [] if keep_nothing else [(old[0], "SKU", ["1"])]
    store.replace_options(product_id, [*kept, (None, "Colour", ["red"])])
    options = store.options(product_id)
    assert [o.name for o in options] == [*([] if keep_nothing else ["SKU"]), "Colour"]
    assert set(old[1:] if not keep_nothing else old).isdisjoint(o.id for o in options)
    assert len(store.options(other)) == 1  # another product's rows are untouched


@pytest.mark.parametrize("keep_nothing", [True, False])
def test_replace_variants_deletes_every_variant_not_kept(store: Store, keep_nothing: bool) -> None:
    product_id, other = _filled(store, "a"), _filled(store, "b")
    old = [v.id for v in store.variants(product_id)]
    kept = [] if keep_nothing else [_variant("1", old[0])]
    ids = store.replace_variants(product_id, [*kept, _variant("9")], 1.0)
    variants = store.variants(product_id)
    assert [v.id for v in variants] == ids
    assert [v.sku for v in variants] == [*([] if keep_nothing else ["1"]), "9"]
    gone = old if keep_nothing else old[1:]
    assert all(store.variant(v) is None for v in gone)
    assert len(store.variants(other)) == 2


def test_replace_variants_with_an_empty_list_deletes_all(store: Store) -> None:
    product_id = _filled(store, "a")
    assert store.replace_variants(product_id, [], 1.0) == []
    assert store.variants(product_id) == []


def test_replace_options_with_an_empty_list_deletes_all(store: Store) -> None:
    product_id = _filled(store, "a")
    store.replace_options(product_id, [])
    assert store.options(product_id) == []


@pytest.mark.parametrize("keep_nothing", [True, False])
def test_delete_media_except_deletes_every_media_not_kept(store: Store, keep_nothing: bool) -> None:
    product_id, other = _filled(store, "a"), _filled(store, "b")
    old = [m.id for m in store.media_of_product(product_id)]
    store.delete_media_except(product_id, [] if keep_nothing else old[:1])
    left = [m.id for m in store.media_of_product(product_id)]
    assert left == ([] if keep_nothing else old[:1])
    assert len(store.media_of_product(other)) == 2
