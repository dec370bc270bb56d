"""One shared botocore S3 client with adaptive retries (its credentials: the settings' keys, else
boto3's chain), the bucket's region (one HeadBucket), the CA bundle every sender trusts, and a
counter of every request sent."""

from __future__ import annotations

import os
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from functools import cache
from typing import TYPE_CHECKING, Any, cast

import botocore.session
import certifi
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    PartialCredentialsError,
)
from botocore.exceptions import SSLError as BotocoreSSLError
from botocore.utils import parse_timestamp

from bulkimg.config import Settings, env_name
from bulkimg.errors import ConfigError, S3Error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHECK_ATTEMPTS = 2  # the region check's HeadBucket: a TLS or network failure told at once
S3_CONNECT_TIMEOUT = 10.0
S3_READ_TIMEOUT = 60.0
# Requests sent outside botocore (s3/get.py's presigned GETs) are announced on the client's event
# system under these names, so the counter attached to the client counts them like its own.
LIGHT_CALL_EVENT = "bulkimg-call.s3"
LIGHT_SEND_EVENT = "bulkimg-send.s3"
# A request of the fast path (s3/get.py) that S3 refused in a way only boto3 gets past (a region
# redirect, expired credentials, a skewed clock): boto3 makes it again. Counted apart.
FALLBACK_EVENT = "bulkimg-fallback.s3"


def emit_light_call(events: Any, operation: str, count: int = 1) -> None:
    """`count` API calls (`operation`, e.g. GetObject) made without botocore."""
    events.emit(f"{LIGHT_CALL_EVENT}.{operation}", count=count)


def emit_fallback(events: Any, code: str, count: int = 1) -> None:
    """`count` fast-path requests S3 answered `code` that boto3 then made."""
    events.emit(f"{FALLBACK_EVENT}.{code}", count=count)


def emit_light_send(events: Any, operation: str, count: int = 1) -> None:
    """`count` HTTP attempts of such calls (first ones and retries)."""
    events.emit(f"{LIGHT_SEND_EVENT}.{operation}", count=count)


class RequestCounter:
    """Counts S3 API calls by operation, and HTTP attempts including retries (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.fallbacks: Counter[str] = Counter()  # fast-path requests boto3 made again, by code
        self.attempts = 0

    def _handlers(self) -> list[tuple[str, Any]]:
        return [
            ("before-call.s3.*", self._on_call),
            ("before-send.s3.*", self._on_send),
            (f"{LIGHT_CALL_EVENT}.*", self._on_light_call),
            (f"{LIGHT_SEND_EVENT}.*", self._on_send),
            (f"{FALLBACK_EVENT}.*", self._on_fallback),
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

    def _on_fallback(self, event_name: str, count: int = 1, **_: Any) -> None:
        with self._lock:
            self.fallbacks[event_name.partition(f"{FALLBACK_EVENT}.")[2]] += count

    def _on_send(self, count: int = 1, **_: Any) -> None:
        with self._lock:
            self.attempts += count

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.calls.items()))

    def fallback_snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.fallbacks.items()))


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


def ca_bundle() -> str | None:
    """The CA bundle every S3 sender verifies HTTPS with: AWS_CA_BUNDLE, else the AWS config
    file's `ca_bundle` (of AWS_PROFILE), as botocore resolves it; None: certifi's bundle."""
    value = botocore.session.get_session().get_config_variable("ca_bundle")
    return str(value) if value else None


def ca_in_use() -> str:
    """The CA bundle named in a TLS failure's message."""
    return ca_bundle() or f"certifi's default bundle ({certifi.where()})"


@cache
def _ssl_context(cafile: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot read the CA bundle {cafile}: {exc.__class__.__name__}") from None


def ssl_context() -> ssl.SSLContext:
    """The TLS configuration of the direct and httpx senders (botocore's: `ca_bundle()`)."""
    return _ssl_context(ca_bundle() or certifi.where())


def tls_failure(endpoint: str) -> ConfigError:
    """One line for a certificate S3's endpoint presented that the CA bundle does not trust."""
    return ConfigError(
        f"TLS to {endpoint} failed: its certificate is not trusted by the CA bundle in use,"
        f" {ca_in_use()} (set AWS_CA_BUNDLE, or ca_bundle in the AWS config file)"
    )


def make_s3_client(
    settings: Settings, max_connections: int | None = None, max_attempts: int | None = None
) -> S3Client:
    """The client every S3 call of a run goes through.

    Credentials: the settings' keys when they come from `.env` or bulkimg.toml; otherwise
    boto3's provider chain (environment with AWS_CREDENTIAL_EXPIRATION, profiles, SSO, assumed
    roles, web identity, container and instance roles), whose temporary credentials botocore
    refreshes before they expire. HTTPS verifies with `ca_bundle()`.
    """
    config = Config(
        region_name=settings.aws_region,
        retries={"max_attempts": max_attempts or settings.s3_max_attempts, "mode": "adaptive"},
        max_pool_connections=max_connections or settings.s3_workers + 4,
        connect_timeout=S3_CONNECT_TIMEOUT,
        read_timeout=S3_READ_TIMEOUT,
        signature_version="s3v4",
    )

    def secret(value: Any) -> str | None:
        return (value.get_secret_value() or None) if value is not None else None

    key_id = secret(settings.aws_access_key_id)
    if key_id is not None and key_id == os.environ.get("AWS_ACCESS_KEY_ID"):
        # The environment's keys: the chain reads them too, with AWS_CREDENTIAL_EXPIRATION.
        keys: dict[str, str | None] = {}
    else:
        keys = {
            "aws_access_key_id": key_id,
            "aws_secret_access_key": secret(settings.aws_secret_access_key),
            "aws_session_token": secret(settings.aws_session_token),
        }
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
            config=config,
            **keys,  # type: ignore[arg-type]
        )
    except PartialCredentialsError as exc:  # from a profile or environment botocore read
        raise ConfigError(f"incomplete AWS credentials: {exc}") from None
    return cast("S3Client", client)


@dataclass(frozen=True, slots=True)
class BucketRegion:
    """What HeadBucket said about the bucket's region, and the region the run signs for."""

    configured: str  # AWS_REGION
    bucket: str | None  # x-amz-bucket-region (None: the server does not say, e.g. SeaweedFS)
    followed: bool  # the run signs for the bucket's region, not AWS_REGION

    @property
    def signing(self) -> str:
        return self.bucket if self.followed and self.bucket else self.configured


def _no_redirect(params: Any, **_: Any) -> None:
    """HeadBucket's 301/400 answer names the bucket's region: one request, no redirect."""
    context = params.get("context") if isinstance(params, dict) else None
    if isinstance(context, dict):  # botocore's S3RegionRedirectorv2 skips a redirected request
        redirect = context.setdefault("s3_redirect", {})
        if isinstance(redirect, dict):
            redirect["redirected"] = True


def bucket_region(client: S3Client, bucket: str) -> str | None:
    """The bucket's region from one HeadBucket (its `x-amz-bucket-region` header, sent with the
    200 and with the 301/400/403 answers of a request signed for another region); None when the
    server does not say. A missing bucket and an untrusted certificate are ConfigErrors."""
    events: Any = client.meta.events
    events.register("before-call.s3.HeadBucket", _no_redirect)
    try:
        answer: Any = client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        answer = exc.response
        code = str(answer.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket"):
            raise ConfigError(
                f"S3 bucket {bucket!r} not found (NoSuchBucket): check AWS_S3_BUCKET"
                " and AWS_ENDPOINT_URL_S3"
            ) from None
    except BotocoreSSLError:
        raise tls_failure(client.meta.endpoint_url) from None
    except (EndpointConnectionError, ConnectTimeoutError) as exc:  # nothing answers there
        raise S3Error(
            f"cannot reach S3 at {client.meta.endpoint_url} (AWS_ENDPOINT_URL_S3, AWS_REGION):"
            f" {type(exc).__name__}"
        ) from None
    except BotoCoreError:  # another network failure: the listing retries and reports it
        return None
    finally:
        events.unregister("before-call.s3.HeadBucket", _no_redirect)
    headers = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    region = headers.get("x-amz-bucket-region")
    return str(region) if region else None


def client_for_bucket(
    settings: Settings,
    client: S3Client | None = None,
    attach: Callable[[S3Client], None] | None = None,
) -> tuple[S3Client, BucketRegion]:
    """The run's client, signing for the bucket's region (learnt with one HeadBucket before
    anything is written): `client` (default: a new one) when AWS_REGION is that region, else a
    new client for the bucket's region: botocore follows a region once per request, presigned
    URLs not at all (S3 refuses them: AuthorizationQueryParametersError).

    Without `client` the HeadBucket goes on a client of its own with few attempts: a TLS or
    network failure is reported in seconds, not after the run's retries. `attach` is called
    with every client used (the run's request counter).
    """
    bucket = settings.aws_s3_bucket or ""
    checker = client or make_s3_client(settings, max_attempts=CHECK_ATTEMPTS)
    if attach is not None:
        attach(checker)
    found = bucket_region(checker, bucket) if bucket else None
    configured = checker.meta.region_name
    followed = found is not None and found != configured
    run_client = client
    if followed or run_client is None:
        region = found if followed and found else configured
        run_client = make_s3_client(settings.model_copy(update={"aws_region": region}))
        if attach is not None:
            attach(run_client)
    return run_client, BucketRegion(configured, found, followed=followed)
