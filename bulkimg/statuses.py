"""Shopify's status enums that bulkimg reads, shared by the client and the sandbox shop (the
schema's `MediaStatus`, `BulkOperationStatus` and `BulkOperationType`). StrEnums: a status read
from a response compares equal to its member."""

from __future__ import annotations

import enum


class MediaStatus(enum.StrEnum):
    UPLOADED = "UPLOADED"
    PROCESSING = "PROCESSING"
    READY = "READY"
    FAILED = "FAILED"


class BulkOperationStatus(enum.StrEnum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    """A COMPLETED operation whose result URL has expired."""

    @property
    def active(self) -> bool:
        """Still counts against the concurrency limit."""
        return self in _ACTIVE


class BulkOperationType(enum.StrEnum):
    MUTATION = "MUTATION"
    QUERY = "QUERY"


_ACTIVE = frozenset(
    {BulkOperationStatus.CREATED, BulkOperationStatus.RUNNING, BulkOperationStatus.CANCELING}
)
TERMINAL_STATUSES = frozenset(
    {
        BulkOperationStatus.COMPLETED,
        BulkOperationStatus.FAILED,
        BulkOperationStatus.CANCELED,
        BulkOperationStatus.EXPIRED,
    }
)
"""An operation in one of these has ended."""
FAILED_STATUSES = frozenset(
    {BulkOperationStatus.FAILED, BulkOperationStatus.CANCELED, BulkOperationStatus.EXPIRED}
)
"""An operation that ended in one of these did not run (all of) its lines."""
