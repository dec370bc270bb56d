"""What the shop says of itself and of its bulk operations (graphql/shop.graphql,
bulk_operation.graphql and bulk_operations.graphql select these fields): typed models for the
runner, `bulkimg check`, `bulkimg status` and `bulkimg cancel`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ShopIdentity(BaseModel):
    """Which shop a token opens (graphql/shop.graphql)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    name: str
    myshopify_domain: str = Field(alias="myshopifyDomain")


class BulkOperationNode(BaseModel):
    """One BulkOperation node. `status` stays a string: a status a later API version adds must
    not crash a run (bulkimg.statuses names those it acts on)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="ignore")

    id: str
    status: str
    error_code: str | None = Field(None, alias="errorCode")
    created_at: str | None = Field(None, alias="createdAt")
    completed_at: str | None = Field(None, alias="completedAt")
    object_count: int = Field(0, alias="objectCount")  # UnsignedInt64: a string on the wire
    url: str | None = None
    partial_data_url: str | None = Field(None, alias="partialDataUrl")
    type: str | None = None

    @classmethod
    def of(cls, raw: Any) -> BulkOperationNode | None:
        """The node of a response (None when the shop answered null: no such operation)."""
        if raw is None:
            return None
        fields = dict(raw)
        fields["objectCount"] = int(fields.get("objectCount") or 0)
        return cls.model_validate(fields)

    @property
    def created(self) -> datetime:
        """createdAt as an aware datetime (the shop's ISO 8601, `Z` for UTC)."""
        parsed = datetime.fromisoformat((self.created_at or "").replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def result_url(self, partial: bool) -> str | None:
        """The full results' URL, or the partial results' of a failed operation."""
        return self.partial_data_url if partial else self.url
