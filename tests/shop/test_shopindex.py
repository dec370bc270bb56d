"""shopindex: a group is its product by handle, else by SKU; disagreements are never guessed."""

from __future__ import annotations

from bulkimg.shop.index import Match, ShopIndex
from bulkimg.shopify.results import ExportedProduct, ExportedVariant


def product(pid: int, handle: str, *skus: str) -> ExportedProduct:
    variants = [
        ExportedVariant(f"gid://shopify/ProductVariant/{pid}{i}", s) for i, s in enumerate(skus)
    ]
    return ExportedProduct(f"gid://shopify/Product/{pid}", handle, [], variants)


INDEX = ShopIndex(
    [
        product(1, "lgd-101792", "827748", "827753"),
        product(2, "solitaire-ring", "692968", "692976"),  # renamed by a merchant
        product(3, "gid-100288", "498111"),
        product(4, "other-dept", "555"),
        product(5, "dup-a", "777"),
        product(6, "dup-b", "777"),
    ]
)


def test_a_product_with_the_groups_handle_is_that_group() -> None:
    found = INDEX.resolve("lgd-101792", ["827748", "827753", "999999"])
    assert found.match is Match.HANDLE and found.product and found.product.handle == "lgd-101792"


def test_a_renamed_handle_is_found_by_the_groups_skus() -> None:
    found = INDEX.resolve("lgd-200001", ["692968", "692976"])
    assert found.match is Match.SKU and found.product and found.product.handle == "solitaire-ring"


def test_a_group_neither_by_handle_nor_by_sku_is_new() -> None:
    assert INDEX.resolve("lgd-300000", ["1", "2"]).match is Match.NEW


def test_handle_and_skus_pointing_at_two_products_is_a_conflict() -> None:
    found = INDEX.resolve("gid-100288", ["498111", "555"])
    assert found.match is Match.CONFLICT and found.product is None
    assert "555" in found.detail and "gid://shopify/Product/4" in found.detail


def test_skus_on_two_products_without_the_handle_is_a_conflict() -> None:
    found = INDEX.resolve("lgd-400000", ["827748", "692968"])
    assert found.match is Match.CONFLICT and found.product is None
    assert "lgd-101792" in found.detail and "solitaire-ring" in found.detail


def test_one_sku_held_by_two_products_is_a_conflict() -> None:
    assert INDEX.resolve("lgd-500000", ["777"]).match is Match.CONFLICT


def test_an_empty_shop_makes_every_group_new() -> None:
    assert ShopIndex([]).resolve("lgd-101792", ["827748"]).match is Match.NEW
