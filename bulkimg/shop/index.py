"""Which product on the shop a catalog group is: by handle, else by variant SKU, never guessed.

The spec's re-run flow says "query existing product by handle or SKU". bulkimg answers it for
every group at once from one read-only bulk export of the shop (products with their handle,
variants' SKUs and media), so a first night against 20,000 products costs one bulk query, not
20,000 lookups. A group whose handle and SKUs point at different products, or whose SKUs sit on
two products, is skipped and reported: writing to the wrong product is worse than not writing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from bulkimg.shopify.results import ExportedProduct


class Match(StrEnum):
    """How a group was matched to the shop."""

    HANDLE = "handle"  # the product with the group's handle (its SKUs agree)
    SKU = "sku"  # no product has the handle; the group's SKUs all sit on one product
    NEW = "new"  # neither: bulkimg creates the product
    CONFLICT = "conflict"  # handle and SKUs disagree, or the SKUs sit on several products


@dataclass(frozen=True, slots=True)
class Identity:
    """A group's product on the shop (None when it is new or in conflict)."""

    match: Match
    product: ExportedProduct | None = None
    detail: str = ""


class ShopIndex:
    """The shop's products by id, handle and variant SKU (from a product export)."""

    def __init__(self, products: Iterable[ExportedProduct]) -> None:
        self.by_id: dict[str, ExportedProduct] = {}
        self.by_handle: dict[str, ExportedProduct] = {}
        self.by_sku: dict[str, set[str]] = {}
        for product in products:
            self.by_id[product.id] = product
            self.by_handle[product.handle] = product
            for variant in product.variants:
                if variant.sku:
                    self.by_sku.setdefault(variant.sku, set()).add(product.id)

    def resolve(self, handle: str, skus: Iterable[str]) -> Identity:
        """The product a group with this handle and these variant SKUs is."""
        owners: dict[str, list[str]] = {}
        for sku in skus:
            for product_id in sorted(self.by_sku.get(sku, ())):
                owners.setdefault(product_id, []).append(sku)
        by_handle = self.by_handle.get(handle)
        if by_handle is not None:
            others = {pid: s for pid, s in owners.items() if pid != by_handle.id}
            if others:
                return Identity(Match.CONFLICT, None, _disagree(handle, by_handle, others))
            return Identity(Match.HANDLE, by_handle)
        if len(owners) == 1:
            return Identity(Match.SKU, self.by_id[next(iter(owners))])
        if owners:
            return Identity(Match.CONFLICT, None, _several(owners, self.by_id))
        return Identity(Match.NEW)


def _disagree(handle: str, product: ExportedProduct, others: dict[str, list[str]]) -> str:
    pid, skus = next(iter(sorted(others.items())))
    return (
        f"handle {handle} is product {product.id}, but SKU {skus[0]} is on product {pid}:"
        " fix the handle or the SKUs on the shop"
    )


def _several(owners: dict[str, list[str]], by_id: dict[str, ExportedProduct]) -> str:
    parts = [f"{by_id[pid].handle} ({pid}: {', '.join(skus[:3])})" for pid, skus in owners.items()]
    return "the group's SKUs sit on several products: " + "; ".join(sorted(parts))
