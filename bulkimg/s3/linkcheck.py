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

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
)

from bulkimg.errors import ConfigError, S3Error
from bulkimg.formats.build_report import LinkCheck
from bulkimg.s3.client import emit_light_call, emit_light_send, tls_failure
from bulkimg.s3.get import TLS_NOT_TRUSTED, Reply, S3GetError, make_sender, redact
from bulkimg.s3.http1 import BodyCutShortError
from bulkimg.s3.options import S3Options

ATTEMPTS = 3  # transient failures (5xx, resets) of the one GET
# Answers that are not the links' fault: the object changed since it was listed.
NOT_THE_LINK = frozenset({404, 412, 416})


def check_link(options: S3Options, url: str, key: str, events: Any) -> LinkCheck:
    """GET the first byte of `url` (the presigned URL of `key`), retrying transient failures.

    A refusal (403 SignatureDoesNotMatch, 400 AuthorizationQueryParametersError, an expired
    token, ...) is a ConfigError: every link of the run would fail the same way.
    """
    sender = make_sender(options, url)
    started = time.monotonic()
    emit_light_call(events, "LinkCheck")

    def get() -> Reply:
        emit_light_send(events, "LinkCheck")
        return sender.get(url, {"Range": "bytes=0-0"}, limit=1)

    retrying = Retrying(
        retry=retry_if_exception(_transient) | retry_if_result(lambda reply: reply.status >= 500),
        stop=stop_after_attempt(ATTEMPTS),
        wait=_backoff,
        sleep=_sleep,
        # the last attempt's outcome: its answer (a 5xx), else its error raised
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )
    try:
        reply: Reply = retrying(get)
        if reply.status in (200, 206) or reply.status in NOT_THE_LINK:
            return LinkCheck(s3_key=key, status=reply.status, seconds=_since(started))
    except S3GetError as exc:
        if exc.code == TLS_NOT_TRUSTED:
            raise tls_failure(_origin(url)) from None
        raise S3Error(f"the check of a presigned URL failed: {exc}") from None
    except BodyCutShortError as exc:
        failed = f"the check of a presigned URL failed: GET {redact(url)}: {type(exc).__name__}"
        raise S3Error(failed) from None
    finally:
        sender.close()
    raise _refused(options, url, reply.status, reply.body)


def _transient(exc: BaseException) -> bool:
    """No answer worth keeping (a reset, a timeout), or a body cut short: worth another GET."""
    return isinstance(exc, BodyCutShortError) or (isinstance(exc, S3GetError) and exc.transient)


def _sleep(seconds: float) -> None:
    if seconds:  # a body cut short is fetched again without a call to sleep
        time.sleep(seconds)


def _backoff(state: RetryCallState) -> float:
    """0.2 s times the attempt that failed (5xx, resets); a body cut short: again at once."""
    failure = state.outcome.exception() if state.outcome else None
    if isinstance(failure, BodyCutShortError):
        return 0.0
    return 0.2 * state.attempt_number


def _refused(options: S3Options, url: str, status: int, body: bytes) -> ConfigError | S3Error:
    code = _code(body) or str(status)
    where = f"s3://{options.bucket}/…, GET {redact(url)}"
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
