"""One shared boto3 S3 client with adaptive retries, and a counter of every request it sends."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.config import Config
from botocore.exceptions import PartialCredentialsError
from botocore.utils import parse_timestamp

from bulkimg.config import Settings, env_name
from bulkimg.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

S3_CONNECT_TIMEOUT = 10.0
S3_READ_TIMEOUT = 60.0
# Requests sent outside botocore (s3get.py's presigned GETs) are announced on the client's event
# system under these names, so the counter attached to the client counts them like its own.
LIGHT_CALL_EVENT = "bulkimg-call.s3"
LIGHT_SEND_EVENT = "bulkimg-send.s3"


def emit_light_call(events: Any, operation: str, count: int = 1) -> None:
    """`count` API calls (`operation`, e.g. GetObject) made without botocore."""
    events.emit(f"{LIGHT_CALL_EVENT}.{operation}", count=count)


def emit_light_send(events: Any, operation: str, count: int = 1) -> None:
    """`count` HTTP attempts of such calls (first ones and retries)."""
    events.emit(f"{LIGHT_SEND_EVENT}.{operation}", count=count)


class RequestCounter:
    """Counts S3 API calls by operation, and HTTP attempts including retries (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.attempts = 0

    def _handlers(self) -> list[tuple[str, Any]]:
        return [
            ("before-call.s3.*", self._on_call),
            ("before-send.s3.*", self._on_send),
            (f"{LIGHT_CALL_EVENT}.*", self._on_light_call),
            (f"{LIGHT_SEND_EVENT}.*", self._on_send),
        ]

    def attach(self, client: S3Client) -> None:
        for event, handler in self._handlers():
            client.meta.events.register(event, handler)

    def detach(self, client: S3Client) -> None:
        for event, handler in self._handlers():
            client.meta.events.unregister(event, handler)

    def _on_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[str(model.name)] += 1

    def _on_light_call(self, event_name: str, count: int = 1, **_: Any) -> None:
        with self._lock:
            self.calls[event_name.rpartition(".")[2]] += count

    def _on_send(self, count: int = 1, **_: Any) -> None:
        with self._lock:
            self.attempts += count

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.calls.items()))


def fast_timestamp(value: Any) -> datetime:
    """botocore's timestamp parser, without dateutil for the two forms S3 sends.

    S3 sends ISO 8601 in listings (`2026-01-02T03:04:05.000Z`) and RFC 1123 in headers; botocore
    parses both with dateutil, ~0.1 ms each, which made a 1,000-key LIST page cost ~180 ms of
    CPU. Anything else (or a time without a zone) goes to botocore's parser.
    """
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value) if "T" in value else parsedate_to_datetime(value)
        except (ValueError, TypeError, IndexError):
            parsed = None
        if parsed is not None and parsed.tzinfo is not None:
            return parsed
    result: datetime = parse_timestamp(value)
    return result


def make_s3_client(settings: Settings, max_connections: int | None = None) -> S3Client:
    """The client every S3 call of a run goes through; credentials fall back to boto3's chain."""
    config = Config(
        region_name=settings.aws_region,
        retries={"max_attempts": settings.s3_max_attempts, "mode": "adaptive"},
        max_pool_connections=max_connections or settings.s3_workers + 4,
        connect_timeout=S3_CONNECT_TIMEOUT,
        read_timeout=S3_READ_TIMEOUT,
        signature_version="s3v4",
    )

    def secret(value: Any) -> str | None:
        return (value.get_secret_value() or None) if value is not None else None

    # botocore's session, not boto3's: the S3 client is the same (boto3 adds resources and
    # transfer helpers bulkimg does not use), without ~0.2 s of imports per run.
    key_id, secret_key = secret(settings.aws_access_key_id), secret(settings.aws_secret_access_key)
    if bool(key_id) != bool(secret_key):
        given, empty = ("aws_access_key_id", "aws_secret_access_key")[:: 1 if key_id else -1]
        raise ConfigError(
            f"{env_name(given)} is set but {env_name(empty)} is empty (environment or .env):"
            " set both, or neither to use the instance role or AWS profile"
        )
    core = botocore.session.get_session()
    core.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=fast_timestamp
    )
    try:
        client = core.create_client(
            "s3",
            region_name=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url_s3 or None,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret_key,
            aws_session_token=secret(settings.aws_session_token),
            config=config,
        )
    except PartialCredentialsError as exc:  # from a profile or environment botocore read
        raise ConfigError(f"incomplete AWS credentials: {exc}") from None
    return cast("S3Client", client)
