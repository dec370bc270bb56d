"""Ranged GETs of S3 objects without boto3: a presigned URL over kept-alive connections.

boto3's `get_object` spends several milliseconds of CPU per request (a request object, event
hooks, a SigV4 header signature, response parsing): at one GET per image that bounds a cold
build (docs/performance.md, "Client CPU per ranged GET": `python -m bench.getclients`). A GET
of the object's presigned URL (`presign.presigner`: one HMAC per URL, credentials frozen once)
needs none of it; S3 signs only `host` in a presigned GET, so `Range` and `If-Match` go as
plain headers.

Two senders carry the GET. `DirectSender` (the default, `BULKIMG_S3_GET_CLIENT=direct`): one
kept-alive `http1.Connection` per worker thread, the cheapest in client CPU per GET.
`HttpxSender`: one pooled httpx client, several times dearer; it is used when `httpx` is asked
for and when a proxy applies to the endpoint (httpx honours HTTP(S)_PROXY and NO_PROXY; `http1`
does not speak to proxies). (Tests ask for `httpx` and route its GETs to moto in-process with
respx: the `s3_gets` fixture of tests/conftest.py and tests/helpers/s3.py.)

The getter keeps boto3's contract for the header reads: retries with jittered
exponential backoff on 5xx, throttling, connection resets and timeouts (up to
`BULKIMG_S3_MAX_ATTEMPTS`), S3's error code on failure (`NoSuchKey`, `PreconditionFailed`,
`AccessDenied`, ...), a body cut short raised apart (the index reads it again), and every
request counted in the run's `RequestCounter` as `GetObject`.

Every attempt has an overall deadline (`GET_DEADLINE_SECONDS`: an answer trickling in, each byte
within the read timeout, is cut there; the httpx sender's sockets check it on every read, head
included, through `DeadlineBackend`) and a cap on the bytes it reads: a ranged GET reads no
further than the end of its range, so a server that ignores `Range` and answers 200 with the
whole object is read only that far (and its bytes used); a listing page reads at most
`LIST_PAGE_MAX_BYTES`.

No message of this module holds a URL's query string (signature, credential, token).
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote_plus, urlsplit
from xml.etree import ElementTree

import httpcore
import httpx
from botocore.exceptions import BotoCoreError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from bulkimg.errors import S3Error
from bulkimg.models import S3Object
from bulkimg.s3 import http1
from bulkimg.s3.client import (
    S3_CONNECT_TIMEOUT,
    S3_READ_TIMEOUT,
    emit_fallback,
    emit_light_call,
    emit_light_send,
    ssl_context,
)
from bulkimg.s3.http1 import BodyCutShortError
from bulkimg.s3.options import S3Options
from bulkimg.s3.presign import presigner

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# A URL signed now is used within seconds; retries and timeouts stay far below this.
GET_URL_SECONDS = 3600
MAX_BACKOFF_SECONDS = 20.0
# One attempt's whole answer, connecting included (each read also has S3_READ_TIMEOUT).
GET_DEADLINE_SECONDS = 60.0
# A ListObjectsV2 page of 1,000 keys is well under 1 MB, even URL-encoded at 1,024 bytes a key.
LIST_PAGE_MAX_BYTES = 16 * 1024 * 1024
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
# The code of a GET whose server presented a certificate the CA bundle does not trust.
TLS_NOT_TRUSTED = "TLSCertificateNotTrusted"
_ERROR_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")


@dataclass(frozen=True, slots=True)
class ListPage:
    objects: list[S3Object]
    truncated: bool


def parse_list_page(body: bytes) -> ListPage:
    """A ListObjectsV2 answer's objects (keys decoded when URL-encoded) and IsTruncated."""
    root = ElementTree.fromstring(body)  # noqa: S314 - S3's answer, parsed as botocore does
    rows: list[dict[str, str]] = []
    truncated = url_encoded = False
    for child in root:
        tag = child.tag.rpartition("}")[2]
        if tag == "Contents":
            rows.append({field.tag.rpartition("}")[2]: field.text or "" for field in child})
        elif tag == "IsTruncated":
            truncated = (child.text or "").strip() == "true"
        elif tag == "EncodingType":
            url_encoded = (child.text or "").strip() == "url"
    objects = [
        S3Object(
            unquote_plus(row["Key"]) if url_encoded else row["Key"],
            int(row["Size"]),
            row["ETag"].strip('"'),
            _timestamp(row["LastModified"]),
        )
        for row in rows
    ]
    return ListPage(objects, truncated)


def _timestamp(text: str) -> datetime:
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"LastModified without a zone: {text!r}")
    return parsed


class S3GetError(S3Error):
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


def make_http_client(options: S3Options, deadlines: DeadlineBackend | None = None) -> httpx.Client:
    """One keep-alive pool for a run's GETs, sized to the S3 workers; boto3's timeouts.

    With `deadlines`, every socket of the client (direct or through a proxy from the
    environment) reads and writes under that backend's deadline for the calling thread."""
    workers = options.workers
    client = httpx.Client(
        limits=httpx.Limits(max_connections=workers, max_keepalive_connections=workers),
        timeout=httpx.Timeout(S3_READ_TIMEOUT, connect=S3_CONNECT_TIMEOUT),
        headers={"Accept-Encoding": "identity", "User-Agent": "bulkimg"},
        verify=ssl_context(),  # AWS_CA_BUNDLE / the config file's ca_bundle, as botocore
    )
    if deadlines is not None:
        deadlines.install(client)
    return client


class _Deadline(threading.local):
    at: float | None = None  # time.monotonic() of the calling thread's GET


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync network backend whose sockets never wait past the calling thread's
    deadline (`until`): each connect, read and write waits min(its timeout, the time left),
    and none starts once the deadline has passed (httpcore.ReadTimeout/WriteTimeout/
    ConnectTimeout, which httpx maps to its own). httpx has per-read timeouts only: a status
    line and headers trickling in a byte at a time, each within the read timeout, would
    otherwise hold the GET for ever.

    httpx takes no network backend: `install` puts this one into the connection pools of a
    client's transports (its own and each proxy's, from HTTP(S)_PROXY/ALL_PROXY) before any
    connection is made. Sync httpx does all its I/O in the calling thread, so a thread-local
    deadline is that GET's, on whichever pooled connection it runs."""

    def __init__(
        self, inner: httpcore.NetworkBackend | None = None, deadline: _Deadline | None = None
    ) -> None:
        self._inner = inner or httpcore.SyncBackend()
        self._deadline = deadline or _Deadline()

    def install(self, client: httpx.Client) -> None:
        """Wrap the sockets of `client`'s httpx transports (a mount that is no
        `httpx.HTTPTransport`, e.g. NO_PROXY's None, has none).

        This reaches into httpx's and httpcore's private attributes (the client's transports,
        a transport's pool, the pool's backend; checked on httpx 0.29, httpcore 1.0.9): a
        rename fails here (AttributeError) or in tests/s3/test_s3get.py's trickling-head test,
        never silently."""
        for transport in [client._transport, *client._mounts.values()]:
            if isinstance(transport, httpx.HTTPTransport):
                pool = transport._pool
                pool._network_backend = DeadlineBackend(pool._network_backend, self._deadline)

    @contextmanager
    def until(self, deadline: float) -> Iterator[None]:
        """The calling thread's sockets wait no later than `deadline` (a time.monotonic())."""
        self._deadline.at = deadline
        try:
            yield
        finally:
            self._deadline.at = None

    def left(self, timeout: float | None, error: type[Exception]) -> float | None:
        """`timeout` cut to the time left before the deadline; `error` when none is left."""
        deadline = self._deadline.at
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise error("the GET's deadline passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self.left(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream, self)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self.left(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_unix_socket(path, timeout, socket_options)
        return _DeadlineStream(stream, self)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket of `DeadlineBackend`: every wait cut at the calling thread's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, backend: DeadlineBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._backend.left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._backend.left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = self._backend.left(timeout, httpcore.ConnectTimeout)
        tls = self._inner.start_tls(ssl_context, server_hostname, timeout)
        return _DeadlineStream(tls, self._backend)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


@dataclass(frozen=True, slots=True)
class Reply:
    """One attempt's answer: S3's status, the body up to the attempt's limit, and the ETag."""

    status: int
    body: bytes
    complete: bool = True  # False: the body went on past the limit (not read)
    etag: str | None = None


class Sender(Protocol):
    """One HTTP attempt of a GET: S3's status and body (the first `limit` bytes at most of a
    200/206 answer; of any other, the first `http1.MAX_OTHER_BODY`).

    Raises S3GetError (no answer, or none worth reading) or BodyCutShortError (the bytes of a
    200/206 answer ended early, stalled, or were still coming at the attempt's deadline).
    """

    def get(self, url: str, headers: dict[str, str], *, limit: int) -> Reply: ...

    def close(self) -> None: ...


class HttpxSender:
    """GETs over one pooled httpx client (proxies from the environment)."""

    def __init__(self, options: S3Options) -> None:
        self._deadlines = DeadlineBackend()
        self._http = make_http_client(options, self._deadlines)

    def close(self) -> None:
        self._http.close()

    def get(self, url: str, headers: dict[str, str], *, limit: int) -> Reply:
        deadline = time.monotonic() + GET_DEADLINE_SECONDS
        with self._deadlines.until(deadline):
            return self._get(url, headers, limit, deadline)

    def _get(self, url: str, headers: dict[str, str], limit: int, deadline: float) -> Reply:
        try:
            request = self._http.build_request("GET", url, headers=headers)
            try:
                response = self._http.send(request, stream=True)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                # Closed or reset before any answer (a kept-alive connection the server dropped):
                # once more at once; the pool has discarded that connection.
                response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:  # reset, refused, timed out: no answer
            if "CERTIFICATE_VERIFY_FAILED" in str(exc):  # retrying cannot help
                raise S3GetError(TLS_NOT_TRUSTED, url) from None
            raise S3GetError(_failure(exc, deadline), url, transient=True) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # anything else: not worth retrying
            raise S3GetError(type(exc).__name__, url) from None
        try:
            try:
                ok = response.status_code in (200, 206)
                cap = limit if ok else http1.MAX_OTHER_BODY
                body, complete = _read_capped(response, cap, deadline)
            except (httpx.TransportError, http1.DeadlineExceededError) as exc:
                if ok:
                    raise BodyCutShortError(_failure(exc, deadline)) from None
                raise S3GetError(_failure(exc, deadline), url, transient=True) from None
            return Reply(response.status_code, body, complete, response.headers.get("etag"))
        finally:
            response.close()  # a body not read to its end closes the connection


def _failure(exc: Exception, deadline: float) -> str:
    """The name of what ended an attempt: DeadlineExceededError, as the direct sender names it,
    when the deadline had passed (a socket of `DeadlineBackend` times out then)."""
    if time.monotonic() >= deadline:
        return http1.DeadlineExceededError.__name__
    return type(exc).__name__


def _read_capped(response: httpx.Response, limit: int, deadline: float) -> tuple[bytes, bool]:
    """The raw (never decoded) body up to `limit` bytes; checked against the deadline between
    chunks (each chunk waits the read timeout at most)."""
    parts: list[bytes] = []
    held = 0
    for chunk in response.iter_raw():
        parts.append(chunk)
        held += len(chunk)
        if held > limit:
            return b"".join(parts)[:limit], False
        if time.monotonic() > deadline:
            raise http1.DeadlineExceededError("the GET's deadline passed")
    return b"".join(parts), True


class _ThreadConnection(threading.local):
    conn: http1.Connection | None = None
    origin: tuple[str, str, int | None] | None = None


class DirectSender:
    """GETs over one kept-alive `http1.Connection` per thread (HTTP or HTTPS).

    Timeouts are boto3's (connect, then each read) and the whole attempt's deadline; HTTPS
    verifies as botocore does (AWS_CA_BUNDLE, the config file's ca_bundle, else certifi's
    bundle). A kept-alive connection the server has closed (or reset) fails at once when reused,
    before any answer: the GET goes again at once, once, on a new connection (what httpx's and
    urllib3's pools do).
    """

    def __init__(self) -> None:
        self._local = _ThreadConnection()
        self._lock = threading.Lock()
        self._open: set[http1.Connection] = set()
        self._ssl: ssl.SSLContext | None = None

    def close(self) -> None:
        with self._lock:
            for conn in self._open:
                conn.close()
            self._open.clear()

    def get(self, url: str, headers: dict[str, str], *, limit: int) -> Reply:
        deadline = time.monotonic() + GET_DEADLINE_SECONDS
        parts = urlsplit(url)
        target = f"{parts.path or '/'}?{parts.query}" if parts.query else parts.path or "/"
        try:
            origin = (parts.scheme, parts.hostname or "", parts.port)
        except ValueError:  # a port out of range
            raise S3GetError("InvalidURL", url) from None
        reused = self._local.conn is not None and self._local.origin == origin
        try:
            try:
                conn = self._connection(origin, reuse=reused)
                answer = conn.get(target, headers, deadline=deadline, limit=limit)
            except http1.ClosedBeforeAnswerError:
                self._drop()
                if not reused:
                    raise
                conn = self._connection(origin, reuse=False)
                answer = conn.get(target, headers, deadline=deadline, limit=limit)
        except BodyCutShortError:
            self._drop()
            raise
        except ValueError as exc:  # an unsupported scheme, a line break in the URL
            self._drop()
            raise S3GetError(type(exc).__name__, url) from None
        except ssl.SSLCertVerificationError:  # retrying cannot help
            self._drop()
            raise S3GetError(TLS_NOT_TRUSTED, url) from None
        except (OSError, http1.ProtocolError) as exc:  # refused, reset, timed out, garbled
            self._drop()
            raise S3GetError(type(exc).__name__, url, transient=True) from None
        if not self._local.conn or not self._local.conn.reusable:
            self._drop()
        return Reply(answer.status, answer.body, answer.complete, answer.headers.get("etag"))

    def _connection(self, origin: tuple[str, str, int | None], *, reuse: bool) -> http1.Connection:
        if reuse and self._local.conn is not None:
            return self._local.conn
        self._drop()
        scheme, host, port = origin
        context = self._ssl_context() if scheme == "https" else None
        conn = http1.Connection(
            scheme,
            host,
            port,
            connect_timeout=S3_CONNECT_TIMEOUT,
            read_timeout=S3_READ_TIMEOUT,
            ssl_context=context,
        )
        self._local.conn, self._local.origin = conn, origin
        with self._lock:
            self._open.add(conn)
        return conn

    def _drop(self) -> None:
        """Close this thread's connection (its state is unknown after an error)."""
        conn = self._local.conn
        if conn is not None:
            conn.close()
            with self._lock:
                self._open.discard(conn)
        self._local.conn = self._local.origin = None

    def _ssl_context(self) -> ssl.SSLContext:
        with self._lock:
            if self._ssl is None:
                self._ssl = ssl_context()  # the one TLS configuration of every sender
            return self._ssl


def _proxied(url: str) -> bool:
    """True when the environment routes `url` through a proxy (HTTP(S)_PROXY, NO_PROXY)."""
    parts = urlsplit(url)
    if parts.scheme not in urllib.request.getproxies():
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


def make_sender(options: S3Options, sample_url: str) -> Sender:
    """The sender for this run's GETs (see the module's docstring)."""
    if options.get_client == "httpx" or _proxied(sample_url):
        return HttpxSender(options)
    return DirectSender()


class PresignedGetter:
    """GETs of one bucket's objects and listing pages by presigned URL; thread-safe.

    Requests are counted here and announced to the client's `RequestCounter` at close() (an
    event per request cost more CPU than the request's own parsing): close() when done.
    """

    def __init__(self, client: S3Client, options: S3Options) -> None:
        self._client = client
        self._bucket = options.bucket
        self._presign = presigner(client, options.bucket, GET_URL_SECONDS)
        self._http = make_sender(options, self._sample_url(options.prefix or "-"))
        # One Retrying for every GET of every worker: tenacity keeps each call's state per
        # thread, and building one per GET would cost the hot path more than the GET's parsing.
        self._retrying = Retrying(
            retry=retry_if_exception(lambda exc: isinstance(exc, S3GetError) and exc.transient),
            stop=stop_after_attempt(options.max_attempts),
            wait=wait_random_exponential(multiplier=1, max=MAX_BACKOFF_SECONDS),
            sleep=lambda seconds: time.sleep(seconds),
            reraise=True,
        )
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._attempts: Counter[str] = Counter()
        self._fallbacks: Counter[str] = Counter()  # requests left to boto3, by S3's code

    def close(self) -> None:
        self._http.close()
        events: Any = self._client.meta.events
        with self._lock:
            for operation, count in self._calls.items():
                emit_light_call(events, operation, count)
            for operation, count in self._attempts.items():
                emit_light_send(events, operation, count)
            for code, count in self._fallbacks.items():
                emit_fallback(events, code, count)
            self._calls.clear()
            self._attempts.clear()
            self._fallbacks.clear()

    def get_range(self, key: str, etag: str, offset: int, length: int) -> bytes:
        """Bytes [offset, offset + length) of `key` if its ETag is still `etag`.

        Raises S3GetError (after retries) or BodyCutShortError.
        """
        try:
            url = self._presign(key)
        except BotoCoreError as exc:  # botocore's signing (the fallback) without credentials
            self._count_call("GetObject")
            raise S3GetError(type(exc).__name__, "") from None
        headers = {"Range": f"bytes={offset}-{offset + length - 1}", "If-Match": f'"{etag}"'}
        # A 200 (Range ignored) carries the object from its first byte: read to the range's end.
        reply = self._fetch("GetObject", url, headers, limit=offset + length)
        if reply.status == 206:
            return reply.body
        if reply.etag is not None and reply.etag.strip('"') != etag:  # If-Match ignored too
            raise S3GetError("PreconditionFailed", url, 412)
        return reply.body[offset:]

    def list_page(self, prefix: str, start_after: str, max_keys: int) -> ListPage:
        """One ListObjectsV2 page of the keys under `prefix` after `start_after`.

        The URL is botocore's (a few ms: a listing makes one page per 1,000 keys); the page is
        parsed here, ~20x faster than botocore's parser. Raises S3GetError (after retries).
        """
        params = {"Bucket": self._bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if start_after:
            params["StartAfter"] = start_after
        try:
            url = self._client.generate_presigned_url(
                "list_objects_v2", Params=params, ExpiresIn=GET_URL_SECONDS
            )
        except BotoCoreError as exc:
            self._count_call("ListObjectsV2")
            raise S3GetError(type(exc).__name__, "") from None
        reply = self._fetch("ListObjectsV2", url, {}, limit=LIST_PAGE_MAX_BYTES, whole=True)
        if not reply.complete:
            raise S3GetError(f"ListPageOver{LIST_PAGE_MAX_BYTES}Bytes", url)
        try:
            return parse_list_page(reply.body)
        except (ElementTree.ParseError, KeyError, ValueError) as exc:
            raise S3GetError("MalformedListing", url) from exc

    def _sample_url(self, key: str) -> str:
        """A URL of this bucket (what decides the proxy; never sent), or "" if signing fails."""
        try:
            return self._presign(key)
        except BotoCoreError:
            return ""

    def _count_call(self, operation: str) -> None:
        with self._lock:
            self._calls[operation] += 1

    def _fetch(
        self, operation: str, url: str, headers: dict[str, str], *, limit: int, whole: bool = False
    ) -> Reply:
        """A 200/206 answer (its body's first `limit` bytes), with retries and jittered
        exponential backoff (as botocore's: a random wait up to 2^(n-1) s, at most 20 s, before
        the n+1st attempt).

        A body cut short is raised as such (the header reads read it again, knowing how much
        they need), or with `whole` retried like any transient failure (a listing page).
        """
        self._count_call(operation)
        reply: Reply = self._retrying(self._attempt_once, operation, url, headers, limit, whole)
        return reply

    def _attempt_once(
        self, operation: str, url: str, headers: dict[str, str], limit: int, whole: bool
    ) -> Reply:
        try:
            try:
                return self._attempt(operation, url, headers, limit)
            except BodyCutShortError as cut:
                if not whole:
                    raise
                raise S3GetError(str(cut), url, transient=True) from None
        except S3GetError as exc:
            if exc.boto3_would_pass:  # the caller makes it with boto3: counted as such
                with self._lock:
                    self._fallbacks[exc.code] += 1
            raise

    def _attempt(self, operation: str, url: str, headers: dict[str, str], limit: int) -> Reply:
        with self._lock:
            self._attempts[operation] += 1
        reply = self._http.get(url, headers, limit=limit)
        if reply.status in (200, 206):
            return reply
        match = _ERROR_CODE.search(reply.body)  # S3's error XML: a few hundred bytes
        code = match[1].decode("utf-8", "replace") if match else str(reply.status)
        raise S3GetError(code, url, reply.status)
