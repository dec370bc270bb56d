"""Ranged GETs of S3 objects without boto3: a presigned URL over one pooled httpx client.

boto3's `get_object` spends ~3.5 ms of CPU per request (a request object, event hooks, a SigV4
header signature, response parsing): at one GET per image that bounds a cold build. A GET of
the object's presigned URL (`presign.presigner`: one HMAC per URL, credentials frozen once)
needs none of it; S3 signs only `host` in a presigned GET, so `Range` and `If-Match` go as
plain headers. The client keeps boto3's contract for the header reads: retries with jittered
exponential backoff on 5xx, throttling, connection resets and timeouts (up to
`BULKIMG_S3_MAX_ATTEMPTS`), S3's error code on failure (`NoSuchKey`, `PreconditionFailed`,
`AccessDenied`, ...), a body cut short raised apart (the index reads it again), and every
request counted in the run's `RequestCounter` as `GetObject`.

No message of this module holds a URL's query string (signature, credential, token).
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import httpx
from botocore.exceptions import BotoCoreError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from bulkimg.config import Settings
from bulkimg.presign import presigner
from bulkimg.s3client import (
    S3_CONNECT_TIMEOUT,
    S3_READ_TIMEOUT,
    emit_light_call,
    emit_light_send,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# A URL signed now is used within seconds; retries and timeouts stay far below this.
GET_URL_SECONDS = 3600
# Answers S3 (and botocore's retry handler) treat as worth another attempt.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RETRY_CODES = frozenset(
    {
        "SlowDown",
        "InternalError",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "PriorRequestNotComplete",
    }
)
# Answers to a presigned URL that boto3's get_object would get past (it follows a bucket's
# region, refreshes expiring credentials, corrects the clock): that GET is made with boto3.
BOTO3_CODES = frozenset(
    {
        "PermanentRedirect",
        "TemporaryRedirect",
        "AuthorizationHeaderMalformed",
        "AuthorizationQueryParametersError",
        "ExpiredToken",
        "TokenRefreshRequired",
        "RequestTimeTooSkewed",
        "301",
        "307",
    }
)
_ERROR_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")


class S3GetError(Exception):
    """A GET S3 did not answer with the bytes: its error code (or the network error's name)."""

    def __init__(
        self, code: str, url: str, status: int | None = None, *, transient: bool = False
    ) -> None:
        self.code = code
        self.status = status
        self.transient = transient or status in RETRY_STATUSES or code in RETRY_CODES
        self.boto3_would_pass = code in BOTO3_CODES
        answer = f"HTTP {status} {code}" if status is not None else code
        super().__init__(f"GET {redact(url)} failed: {answer}")


class BodyCutShortError(Exception):
    """The answer's body ended before its Content-Length, or stalled: worth reading again."""


def redact(url: str) -> str:
    """The URL without its query string (a presigned URL's query is its credential)."""
    base, sep, _ = url.partition("?")
    return f"{base}?…" if sep else base


class _RedactUrls(logging.Filter):
    """httpx logs each request's URL at INFO: a presigned one carries its credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                redact(str(a)) if isinstance(a, httpx.URL) else a for a in record.args
            )
        return True


_HTTPX_LOGGER = logging.getLogger("httpx")
if not any(isinstance(f, _RedactUrls) for f in _HTTPX_LOGGER.filters):
    _HTTPX_LOGGER.addFilter(_RedactUrls())


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, S3GetError) and exc.transient


def make_http_client(
    settings: Settings, transport: httpx.BaseTransport | None = None
) -> httpx.Client:
    """One keep-alive pool for a run's GETs, sized to the S3 workers; boto3's timeouts."""
    workers = settings.s3_workers
    return httpx.Client(
        limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
        timeout=httpx.Timeout(S3_READ_TIMEOUT, connect=S3_CONNECT_TIMEOUT),
        headers={"Accept-Encoding": "identity", "User-Agent": "bulkimg"},
        transport=transport,
    )


def _transport() -> httpx.BaseTransport | None:
    """The GET client's transport: None, the network (tests route it to moto's in-process S3)."""
    return None


class PresignedGetter:
    """Ranged GETs of one bucket's objects by presigned URL; thread-safe; close() when done."""

    def __init__(self, client: S3Client, bucket: str, settings: Settings) -> None:
        self._events: Any = client.meta.events
        self._presign = presigner(client, bucket, GET_URL_SECONDS)
        self._http = make_http_client(settings, _transport())
        self._retrying = Retrying(
            retry=retry_if_exception(_transient),
            stop=stop_after_attempt(settings.s3_max_attempts),
            wait=wait_random_exponential(multiplier=1, max=20),  # botocore's: rand * 2^n, ≤ 20 s
            reraise=True,
        )

    def close(self) -> None:
        self._http.close()

    def get_range(self, key: str, etag: str, offset: int, length: int) -> bytes:
        """Bytes [offset, offset + length) of `key` if its ETag is still `etag`.

        Raises S3GetError (after retries) or BodyCutShortError.
        """
        emit_light_call(self._events, "GetObject")
        try:
            url = self._presign(key)
        except BotoCoreError as exc:  # botocore's signing (the fallback) without credentials
            raise S3GetError(type(exc).__name__, "") from None
        headers = {"Range": f"bytes={offset}-{offset + length - 1}", "If-Match": f'"{etag}"'}
        data: bytes = self._retrying(self._attempt, url, headers)
        return data

    def _attempt(self, url: str, headers: dict[str, str]) -> bytes:
        emit_light_send(self._events, "GetObject")
        try:
            request = self._http.build_request("GET", url, headers=headers)
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:  # reset, refused, timed out: no answer
            raise S3GetError(type(exc).__name__, url, transient=True) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # anything else: not worth retrying
            raise S3GetError(type(exc).__name__, url) from None
        try:
            if response.status_code in (200, 206):
                try:
                    return b"".join(response.iter_raw())  # raw: never decoded
                except httpx.TransportError as exc:
                    raise BodyCutShortError(type(exc).__name__) from None
            try:
                body = response.read()  # S3's error XML: a few hundred bytes
            except httpx.TransportError as exc:
                raise S3GetError(type(exc).__name__, url, transient=True) from None
            match = _ERROR_CODE.search(body)
            code = match[1].decode("utf-8", "replace") if match else str(response.status_code)
            raise S3GetError(code, url, response.status_code)
        finally:
            response.close()
