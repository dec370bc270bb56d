"""One shared boto3 S3 client with adaptive retries, and a counter of every request it sends."""

from __future__ import annotations

import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from bulkimg.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


class RequestCounter:
    """Counts S3 API calls by operation, and HTTP attempts including retries (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.attempts = 0

    def attach(self, client: S3Client) -> None:
        events = client.meta.events
        events.register("before-call.s3.*", self._on_call)
        events.register("before-send.s3.*", self._on_send)

    def _on_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[str(model.name)] += 1

    def _on_send(self, **_: Any) -> None:
        with self._lock:
            self.attempts += 1

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.calls.items()))


def make_s3_client(settings: Settings, max_connections: int | None = None) -> S3Client:
    """The client every S3 call of a run goes through; credentials fall back to boto3's chain."""
    config = Config(
        region_name=settings.aws_region,
        retries={"max_attempts": settings.s3_max_attempts, "mode": "adaptive"},
        max_pool_connections=max_connections or settings.s3_workers + 4,
        connect_timeout=10,
        read_timeout=60,
        signature_version="s3v4",
    )

    def secret(value: Any) -> str | None:
        return (value.get_secret_value() or None) if value is not None else None

    session = boto3.session.Session(
        aws_access_key_id=secret(settings.aws_access_key_id),
        aws_secret_access_key=secret(settings.aws_secret_access_key),
        aws_session_token=secret(settings.aws_session_token),
        region_name=settings.aws_region,
    )
    client: S3Client = session.client(
        "s3", endpoint_url=settings.aws_endpoint_url_s3 or None, config=config
    )
    return client
