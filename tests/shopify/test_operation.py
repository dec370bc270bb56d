"""Unit tests of shopify/operation.py: a BulkOperation node as the shop returns it."""

from __future__ import annotations

from datetime import UTC, datetime

from bulkimg.shopify.operation import BulkOperationNode, ShopIdentity
from bulkimg.statuses import TERMINAL_STATUSES, BulkOperationStatus


def test_a_null_node_is_no_operation() -> None:
    assert BulkOperationNode.of(None) is None


def test_object_count_comes_as_a_string_or_null() -> None:
    base = {"id": "gid://shopify/BulkOperation/1", "status": "RUNNING"}
    assert BulkOperationNode.of({**base, "objectCount": "1234"}).object_count == 1234  # type: ignore[union-attr]
    assert BulkOperationNode.of({**base, "objectCount": None}).object_count == 0  # type: ignore[union-attr]


def test_status_compares_with_the_shared_enum_and_an_unknown_status_is_kept() -> None:
    done = BulkOperationNode.model_validate({"id": "x", "status": "COMPLETED"})
    assert done.status == BulkOperationStatus.COMPLETED and done.status in TERMINAL_STATUSES
    later = BulkOperationNode.model_validate({"id": "x", "status": "PAUSED"})
    assert later.status == "PAUSED" and later.status not in TERMINAL_STATUSES


def test_created_at_in_utc_and_result_urls() -> None:
    node = BulkOperationNode.model_validate(
        {"id": "x", "status": "FAILED", "createdAt": "2026-12-04T03:00:00Z",
         "url": None, "partialDataUrl": "https://shop/partial.jsonl"}
    )  # fmt: skip
    assert node.created == datetime(2026, 12, 4, 3, tzinfo=UTC)
    assert node.result_url(partial=True) == "https://shop/partial.jsonl"
    assert node.result_url(partial=False) is None


def test_the_shop_names_itself_by_graphql_names() -> None:
    shop = ShopIdentity.model_validate({"name": "Gems", "myshopifyDomain": "gems.myshopify.com"})
    assert (shop.name, shop.myshopify_domain) == ("Gems", "gems.myshopify.com")
