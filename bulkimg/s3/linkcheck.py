"""One presigned URL a run wrote, fetched as Shopify will fetch it, before the run reports success.

moto and most test servers check no signature, no region and no expiry; S3 checks all three.
A ranged GET of one byte of a written URL proves the links work (signature, region, credentials,
clock, TLS) for one request, through the sender the header reads use (direct or httpx, the
same CA bundle).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from bulkimg.config import Settings
from bulkimg.errors import ConfigError, S3Error
from bulkimg.formats.build_report import LinkCheck
from bulkimg.s3.client import emit_light_call, emit_light_send, tls_failure
from bulkimg.s3.get import TLS_NOT_TRUSTED, S3GetError, make_sender, redact
from bulkimg.s3.http1 import BodyCutShortError

ATTEMPTS = 3  # transient failures (5xx, resets) of the one GET
# Answers that are not the links' fault: the object changed since it was listed.
NOT_THE_LINK = frozenset({404, 412, 416})


def check_link(settings: Settings, url: str, key: str, events: Any) -> LinkCheck:
    """GET the first byte of `url` (the presigned URL of `key`), retrying transient failures.

    A refusal (403 SignatureDoesNotMatch, 400 AuthorizationQueryParametersError, an expired
    token, ...) is a ConfigError: every link of the run would fail the same way.
    """
    sender = make_sender(settings, url)
    started = time.monotonic()
    endpoint = _origin(url)
    emit_light_call(events, "LinkCheck")
    try:
        for attempt in range(1, ATTEMPTS + 1):
            emit_light_send(events, "LinkCheck")
            try:
                reply = sender.get(url, {"Range": "bytes=0-0"}, limit=1)
                status, body = reply.status, reply.body
            except S3GetError as exc:
                if exc.code == TLS_NOT_TRUSTED:
                    raise tls_failure(endpoint) from None
                if exc.transient and attempt < ATTEMPTS:
                    time.sleep(0.2 * attempt)
                    continue
                raise S3Error(f"the check of a presigned URL failed: {exc}") from None
            except BodyCutShortError as exc:  # the link answered; its body was cut
                if attempt < ATTEMPTS:
                    continue
                raise S3Error(
                    f"the check of a presigned URL failed: GET {redact(url)}: {type(exc).__name__}"
                ) from None
            if status in (200, 206) or status in NOT_THE_LINK:
                return LinkCheck(s3_key=key, status=status, seconds=_since(started))
            if status >= 500 and attempt < ATTEMPTS:
                time.sleep(0.2 * attempt)
                continue
            raise _refused(settings, url, status, body)
    finally:
        sender.close()
    raise AssertionError("unreachable")


def _refused(settings: Settings, url: str, status: int, body: bytes) -> ConfigError | S3Error:
    code = _code(body) or str(status)
    where = f"s3://{settings.aws_s3_bucket}/…, GET {redact(url)}"
    if status >= 500:
        return S3Error(f"the check of a presigned URL failed: HTTP {status} {code} ({where})")
    return ConfigError(
        f"S3 refused a presigned URL this run wrote (HTTP {status} {code}; {where}):"
        " Shopify could not fetch the images. Check the S3 credentials, AWS_REGION and the clock"
    )


def _code(body: bytes) -> str:
    start, end = body.find(b"<Code>"), body.find(b"</Code>")
    if start < 0 or end < start:
        return ""
    return body[start + 6 : min(end, start + 106)].decode("utf-8", "replace")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
