"""The header reads' presigned GETs over httpx (`bulkimg/s3/get.py`), against moto in-process.

What the fault proxy (tests/s3/test_s3_faults.py) proves end to end is checked here at the
request level: every GET counted once, S3's answers mapped as boto3's were, no secret in a
message.
"""

from __future__ import annotations

import io
import socket
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from mypy_boto3_s3 import S3Client
from PIL import Image

from bulkimg.demo.samples import image_bytes
from bulkimg.images.cache import ProbeCache
from bulkimg.images.rules import ImageRules
from bulkimg.models import Rejection
from bulkimg.s3.client import RequestCounter, make_s3_client
from bulkimg.s3.get import PresignedGetter, S3GetError, redact
from bulkimg.s3.http1 import BodyCutShortError
from bulkimg.s3.index import S3ImageIndex
from bulkimg.s3.keys import folder_for
from bulkimg.s3.options import S3Options
from tests.helpers.env import BUCKET, CANARY_KEY_ID, CANARY_SECRET, CANARY_TOKEN, secrets_in
from tests.helpers.fixtures import MakeSettings
from tests.helpers.s3 import S3Gets, moto_s3_transport

SKU = "827749"


def put(s3: S3Client, name: str, body: bytes) -> str:
    key = folder_for(SKU) + name
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return key


def icc_jpeg() -> bytes:
    """A JPEG whose size marker lies behind a 179 KB ICC profile (range extensions)."""
    out = io.BytesIO()
    Image.new("RGB", (900, 700)).save(out, "JPEG", icc_profile=bytes(range(256)) * 700)
    return out.getvalue()


class Recorder(httpx.BaseTransport):
    """Forwards to `inner` (moto) or answers with `answer(request)`; records each request.

    Object GETs go to `answer` and `requests`; listing pages to `list_answer` and `lists`.
    """

    def __init__(self, answer: Any = None, list_answer: Any = None) -> None:
        self.inner = moto_s3_transport()
        self.answer = answer
        self.list_answer = list_answer
        self.requests: list[httpx.Request] = []
        self.lists: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        listing = b"list-type=2" in request.url.query
        (self.lists if listing else self.requests).append(request)
        answer = self.list_answer if listing else self.answer
        response = answer(request) if answer else None
        return response if response is not None else self.inner.handle_request(request)

    @property
    def keys(self) -> Counter[str]:
        return Counter(r.url.path.rsplit("/", 1)[1] for r in self.requests)


@pytest.fixture
def recorder(s3: S3Client, s3_gets: S3Gets) -> Any:
    """Put a Recorder where the GETs go (`s3_gets`); `recorder(answer)` for another."""

    def install(answer: Any = None, list_answer: Any = None) -> Recorder:
        transport = Recorder(answer, list_answer)
        s3_gets.transport = transport
        return transport

    return install


def index(s3: S3Client, settings: Any) -> tuple[Any, Any, RequestCounter]:
    counter = RequestCounter()
    counter.attach(s3)
    cache = ProbeCache(settings.cache_dir / "dimensions.sqlite")
    try:
        found = S3ImageIndex(
            s3, S3Options.from_settings(settings), ImageRules.from_settings(settings), cache
        )
        result = found.index([SKU])[SKU]
    finally:
        cache.close()
        counter.detach(s3)
    return result, found.stats, counter


def s3_error(status: int, code: str | None) -> httpx.Response:
    body = f"<Error><Code>{code}</Code><Message>m</Message></Error>" if code else ""
    return httpx.Response(
        status, stream=httpx.ByteStream(body.encode()), headers={"Content-Type": "application/xml"}
    )


def test_every_get_is_counted_once_as_getobject_with_its_attempts(
    s3: S3Client, make_settings: MakeSettings, recorder: Any
) -> None:
    for n in range(1, 4):
        put(s3, f"{SKU}-{n}a-1.png", image_bytes("png", 300, 300))
    put(s3, f"{SKU}-4a-1.jpg", icc_jpeg())
    put(s3, f"{SKU}-5a-1.gif", b"")  # rejected from the listing: no GET
    transport = recorder()
    result, stats, counter = index(s3, make_settings())
    assert len(result.accepted) == 4
    gets = len(transport.requests)
    extensions = transport.keys[f"{SKU}-4a-1.jpg"] - 1
    assert extensions >= 1  # the ICC JPEG needed more than its first 64 KiB
    assert counter.calls["GetObject"] == gets == stats.probed + extensions == 4 + extensions
    assert counter.attempts == counter.calls["GetObject"] + counter.calls["ListObjectsV2"]
    # (moto's default client presigns with SigV2: s3/presign.py's fallback, botocore's URL)
    assert all(r.method == "GET" and "Signature=" in str(r.url) for r in transport.requests)
    assert {r.headers["If-Match"][:1] for r in transport.requests} == {'"'}
    # boto3's path reads the same ranges: the same count.
    _, _, boto = index(
        s3, make_settings(s3_get_client="boto3", cache_dir=make_settings().cache_dir / "b")
    )
    assert boto.calls["GetObject"] == gets


def test_retried_gets_are_counted_as_attempts_of_one_call(
    s3: S3Client, make_settings: MakeSettings, recorder: Any
) -> None:
    put(s3, f"{SKU}-1a-1.png", image_bytes("png", 300, 300))
    answers = iter([s3_error(503, "SlowDown"), s3_error(500, "InternalError")])
    transport = recorder(lambda _: next(answers, None))
    result, _, counter = index(s3, make_settings())
    assert len(result.accepted) == 1
    assert len(transport.requests) == 3
    assert counter.calls["GetObject"] == 1
    assert counter.attempts - counter.calls["ListObjectsV2"] == 3


@pytest.mark.fault_matrix(
    area="S3",
    fault="presigned GET answered 404 NoSuchKey, 412 PreconditionFailed or 403 AccessDenied"
    " (with or without S3's error body)",
    outcome="404: rejected as changed; 412: unreadable, replaced since listed (defers the group);"
    " 403: unreadable, AccessDenied (defers the group); none retried",
)
@pytest.mark.parametrize("with_body", [True, False], ids=["xml", "no-body"])
def test_404_412_and_403_answers_map_as_with_boto3(
    s3: S3Client, make_settings: MakeSettings, recorder: Any, with_body: bool
) -> None:
    answers = {
        "1a": (404, "NoSuchKey"),
        "2a": (412, "PreconditionFailed"),
        "3a": (403, "AccessDenied"),
    }
    for variation in answers:
        put(s3, f"{SKU}-{variation}-1.png", image_bytes("png", 300, 300))

    def answer(request: httpx.Request) -> httpx.Response:
        status, code = answers[request.url.path.rsplit("-", 2)[1]]
        return s3_error(status, code if with_body else None)

    transport = recorder(answer)
    result, _, _ = index(s3, make_settings())
    assert result.accepted == []
    verdicts = {r.key.rsplit("/", 1)[1]: (r.reason, r.detail) for r in result.rejected}
    if with_body:
        assert verdicts == {
            f"{SKU}-1a-1.png": (Rejection.CHANGED, "NoSuchKey"),
            f"{SKU}-2a-1.png": (Rejection.UNREADABLE, "replaced since listed (PreconditionFailed)"),
            f"{SKU}-3a-1.png": (Rejection.UNREADABLE, "AccessDenied"),
        }
    else:
        assert verdicts == {
            f"{SKU}-1a-1.png": (Rejection.CHANGED, "404"),
            f"{SKU}-2a-1.png": (Rejection.UNREADABLE, "replaced since listed (412)"),
            f"{SKU}-3a-1.png": (Rejection.UNREADABLE, "403"),
        }
    assert len(transport.requests) == 3  # not retried


def canary_client(make_settings: MakeSettings) -> Any:
    return make_s3_client(make_settings(aws_session_token=CANARY_TOKEN))


@pytest.mark.fault_matrix(
    area="Secrets",
    fault="a presigned GET that fails for good (500 on every attempt, or no connection)",
    outcome="the error names the key's URL without its query: no signature, credential, token"
    " or secret in the message, nor in a chained exception",
)
@pytest.mark.parametrize("failure", ["500", "connect"])
def test_a_get_that_fails_for_good_says_no_secret(
    s3: S3Client, make_settings: MakeSettings, recorder: Any, failure: str
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if failure == "connect":
            raise httpx.ConnectError(f"cannot reach {request.url}", request=request)
        return s3_error(500, "InternalError")

    transport = recorder(answer)
    settings = make_settings(s3_max_attempts=2)
    getter = PresignedGetter(canary_client(make_settings), S3Options.from_settings(settings))
    try:
        with pytest.raises(S3GetError) as failed:
            getter.get_range(folder_for(SKU) + "x-1a-1.png", "etag", 0, 100)
    finally:
        getter.close()
    assert len(transport.requests) == 2
    assert CANARY_KEY_ID in str(transport.requests[0].url)  # the URL did carry them
    message = str(failed.value)
    assert failed.value.code == ("InternalError" if failure == "500" else "ConnectError")
    assert message.startswith(f"GET https://{BUCKET}.s3.amazonaws.com/")
    for text in (message, repr(failed.value), repr(getter)):
        assert secrets_in([], text) == []
        assert CANARY_KEY_ID not in text and "X-Amz-" not in text and "Signature" not in text
        assert CANARY_SECRET not in text and CANARY_TOKEN not in text
    error = failed.value  # nothing chained that a traceback would show
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)


def test_redact_drops_the_query() -> None:
    assert redact("https://b.s3.amazonaws.com/k%20x?X-Amz-Signature=abc") == (
        "https://b.s3.amazonaws.com/k%20x?…"
    )
    assert redact("http://127.0.0.1:9000/b/k") == "http://127.0.0.1:9000/b/k"


@pytest.mark.parametrize(
    ("status", "code"), [(301, "PermanentRedirect"), (400, "ExpiredToken"), (301, None)]
)
def test_an_answer_boto3_would_get_past_is_read_with_boto3(
    s3: S3Client, make_settings: MakeSettings, recorder: Any, status: int, code: str | None
) -> None:
    put(s3, f"{SKU}-1a-1.png", image_bytes("png", 300, 300))
    transport = recorder(lambda _: s3_error(status, code))
    result, _, counter = index(s3, make_settings())
    assert [(a.width, a.height) for a in result.accepted] == [(300, 300)]
    assert len(transport.requests) == 1  # not retried: boto3 (region, credentials) reads it
    assert counter.calls["GetObject"] == 2


def test_httpx_logs_no_query_string(
    s3: S3Client, make_settings: MakeSettings, recorder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    put(s3, f"{SKU}-1a-1.png", image_bytes("png", 300, 300))
    recorder()
    caplog.set_level("DEBUG")
    result, _, _ = index(s3, make_settings())
    assert len(result.accepted) == 1
    text = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("httpx", "httpcore"))
    )  # (botocore's own DEBUG lines show its signing: not ours to change)
    assert f"{SKU}-1a-1.png?…" in text
    assert "Signature" not in text and "Credential" not in text


def test_odd_keys_are_read_over_real_http(s3_server: Any, make_settings: MakeSettings) -> None:
    """The presigned path of keys with characters to escape, through moto's server."""
    bucket = "odd-keys"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    keys = ["sorted-media/a b+c~é/x&y=z;1%.png", "sorted-media/中/文 #?.png"]
    etags = [client.put_object(Bucket=bucket, Key=k, Body=b"0123456789")["ETag"] for k in keys]
    settings = make_settings(aws_endpoint_url_s3=s3_server.endpoint_url, aws_s3_bucket=bucket)
    getter = PresignedGetter(make_s3_client(settings), S3Options.from_settings(settings))
    try:
        for key, etag in zip(keys, etags, strict=True):
            assert getter.get_range(key, etag.strip('"'), 2, 5) == b"23456"
        with pytest.raises(S3GetError, match="PreconditionFailed"):
            getter.get_range(keys[0], "0" * 32, 0, 5)
    finally:
        getter.close()


# -- listing pages -----------------------------------------------------------------------------


def test_listing_pages_go_by_presigned_url_and_decode_every_key(
    s3: S3Client, make_settings: MakeSettings, recorder: Any
) -> None:
    odd = [f"{SKU}-{n}a-1 +%é.png" for n in range(1, 4)]  # space, plus, percent, non-ASCII
    for name in odd:  # not image names: rejected by name, under their own (decoded) keys
        put(s3, name, image_bytes("png", 300, 300))
    for n in range(1200):  # another folder's keys in between: more than one page
        s3.put_object(Bucket=BUCKET, Key=f"sorted-media/82/77/48/{n:05d}.txt", Body=b"")
    put(s3, f"{SKU}-4a-1.png", image_bytes("png", 300, 300))
    transport = recorder()
    result, stats, counter = index(s3, make_settings())
    assert [a.key.rsplit("/", 1)[1] for a in result.accepted] == [f"{SKU}-4a-1.png"]
    assert sorted(r.key.rsplit("/", 1)[1] for r in result.rejected) == odd
    assert transport.lists and all("list-type=2" in str(r.url) for r in transport.lists)
    assert counter.calls["ListObjectsV2"] == len(transport.lists) == stats.list_pages


def test_a_listing_page_answered_503_is_retried_and_counted_as_attempts(
    s3: S3Client, make_settings: MakeSettings, recorder: Any
) -> None:
    put(s3, f"{SKU}-1a-1.png", image_bytes("png", 300, 300))
    answers = iter([s3_error(503, "SlowDown"), s3_error(500, "InternalError")])
    transport = recorder(list_answer=lambda _: next(answers, None))
    result, _, counter = index(s3, make_settings())
    assert len(result.accepted) == 1
    assert len(transport.lists) == 3
    assert counter.calls["ListObjectsV2"] == 1
    assert counter.attempts == 3 + counter.calls["GetObject"]


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (403, "AccessDenied", "ConfigError"),
        (404, "NoSuchBucket", "ConfigError"),
        (500, "InternalError", "S3Error"),
        (200, None, "S3Error"),  # not a listing: malformed
    ],
)
def test_a_listing_that_fails_for_good_ends_the_build_with_one_clear_error(
    s3: S3Client,
    make_settings: MakeSettings,
    recorder: Any,
    status: int,
    code: str | None,
    error: str,
) -> None:
    from bulkimg import errors

    put(s3, f"{SKU}-1a-1.png", image_bytes("png", 300, 300))
    transport = recorder(list_answer=lambda _: s3_error(status, code))
    with pytest.raises(getattr(errors, error)) as failed:
        index(s3, make_settings(s3_max_attempts=2))
    message = str(failed.value)
    assert message.startswith(f"S3 listing of s3://{BUCKET}/")
    assert (code or "MalformedListing") in message
    assert "X-Amz-" not in message and CANARY_KEY_ID not in message
    assert len(transport.lists) == (2 if status == 500 else 1)


def test_a_listing_answer_boto3_would_get_past_is_listed_with_boto3(
    s3: S3Client, make_settings: MakeSettings, recorder: Any
) -> None:
    put(s3, f"{SKU}-1a-1.png", image_bytes("png", 300, 300))
    transport = recorder(list_answer=lambda _: s3_error(301, "PermanentRedirect"))
    result, _, counter = index(s3, make_settings())
    assert len(result.accepted) == 1
    assert len(transport.lists) == 1
    assert counter.calls["ListObjectsV2"] == 2  # the presigned page, then boto3's


# -- robust GETs over loopback: deadline, cap, Range ignored --------------------------------------


@pytest.fixture(params=["direct", "httpx"])
def sender_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    kind: str = request.param
    monkeypatch.setattr("bulkimg.s3.get.S3_READ_TIMEOUT", 3.0)  # a wrong wait fails fast
    return kind


def loopback_getter(make_settings: MakeSettings, port: int, kind: str) -> PresignedGetter:
    settings = make_settings(
        aws_endpoint_url_s3=f"http://127.0.0.1:{port}", s3_get_client=kind, s3_max_attempts=1
    )
    return PresignedGetter(make_s3_client(settings), S3Options.from_settings(settings))


@pytest.mark.fault_matrix(
    area="S3",
    fault="a server that ignores Range: 200 with the whole object (4 MB, the rest stalling) to a"
    " ranged GET; the same with an ETag that is not the listed one",
    outcome="read only to the range's end and its bytes used, the connection not reused; the"
    " other ETag is PreconditionFailed (replaced since listed)",
)
def test_a_200_to_a_ranged_get_is_read_only_to_the_ranges_end(
    make_settings: MakeSettings, sender_kind: str
) -> None:
    from tests.helpers.http1 import ScriptedServer, read_request

    blob = bytes(range(256)) * 1024  # the first 256 KiB of a 4 MiB object
    stop = threading.Event()
    ranges: list[str] = []

    def script(conn: socket.socket, _: int) -> None:
        while request := read_request(conn):
            ranges.append(
                next(line for line in request.split(b"\r\n") if b"Range" in line).decode()
            )
            head = b'HTTP/1.1 200 OK\r\nContent-Length: 4194304\r\nETag: "e1"\r\n\r\n'
            conn.sendall(head + blob)
            stop.wait(30)  # the rest never comes: a client reading it all would time out

    server = ScriptedServer(script)
    getter = loopback_getter(make_settings, server.port, sender_kind)
    try:
        assert getter.get_range("k.jpg", "e1", 1000, 5000) == blob[1000:6000]
        assert getter.get_range("k.jpg", "e1", 0, 100) == blob[:100]
        with pytest.raises(S3GetError, match="PreconditionFailed"):
            getter.get_range("k.jpg", "other", 0, 100)
        assert server.connections == 3  # a body left unread is never reused
    finally:
        getter.close()
        stop.set()
        server.close()
    assert ranges == ["Range: bytes=1000-5999", "Range: bytes=0-99", "Range: bytes=0-99"]


@pytest.mark.fault_matrix(
    area="S3",
    fault="a GET whose body trickles in forever through the getter (direct and httpx senders)",
    outcome="cut at the attempt's deadline (s3get.GET_DEADLINE_SECONDS, 60 s) as a body cut short,"
    " which the index reads again and then defers the group",
)
def test_a_trickling_body_is_cut_at_the_deadline_by_either_sender(
    make_settings: MakeSettings, sender_kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers.http1 import ScriptedServer, read_request, trickle

    monkeypatch.setattr("bulkimg.s3.get.GET_DEADLINE_SECONDS", 0.6)
    stop = threading.Event()

    def script(conn: socket.socket, _: int) -> None:
        read_request(conn)
        conn.sendall(b'HTTP/1.1 206 Partial Content\r\nContent-Length: 1000\r\nETag: "e"\r\n\r\n')
        trickle(conn, b"x" * 1000, stop)

    server = ScriptedServer(script)
    getter = loopback_getter(make_settings, server.port, sender_kind)
    try:
        started = time.monotonic()
        with pytest.raises(BodyCutShortError, match="DeadlineExceeded"):
            getter.get_range("k.jpg", "e", 0, 1000)
        assert time.monotonic() - started < 3  # the trickle alone would take 50 s
    finally:
        getter.close()
        stop.set()
        server.close()


@pytest.mark.fault_matrix(
    area="S3",
    fault="a GET whose status line and headers trickle in, a byte every 0.2 s (each within the"
    " read timeout), through the getter: direct, httpx, and httpx through an HTTP_PROXY",
    outcome="cut at the attempt's deadline (DeadlineExceededError, retried): the httpx sender's"
    " sockets check the deadline on every read (httpx alone has per-read timeouts only)",
)
@pytest.mark.parametrize("route", ["direct", "httpx", "httpx-proxy"])
def test_a_trickling_head_is_cut_at_the_deadline_by_every_sender(
    make_settings: MakeSettings, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers.http1 import ScriptedServer, read_request, trickle

    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                 "all_proxy", "NO_PROXY", "no_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("bulkimg.s3.get.S3_READ_TIMEOUT", 3.0)  # each byte well within it
    monkeypatch.setattr("bulkimg.s3.get.GET_DEADLINE_SECONDS", 1.0)
    stop = threading.Event()
    request_lines: list[bytes] = []
    head = b'HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\nETag: "e"\r\n\r\nhello'

    def script(conn: socket.socket, _: int) -> None:
        request_lines.append(read_request(conn).partition(b"\r\n")[0])
        trickle(conn, head, stop, every=0.2, stop_after=3.0)  # then close: 3 s, not forever

    server = ScriptedServer(script)
    port = server.port
    if route == "httpx-proxy":  # the server is the proxy; nothing listens at the endpoint
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
    # Through the proxy the setting says `direct`: a proxy applies, so the httpx sender is used.
    getter = loopback_getter(make_settings, port, "httpx" if route == "httpx" else "direct")
    try:
        started = time.monotonic()
        with pytest.raises(S3GetError, match="DeadlineExceededError"):
            getter.get_range("k.jpg", "e", 0, 5)
        elapsed = time.monotonic() - started
        assert elapsed < 3.0  # 3x the deadline; unchecked, the head alone would take 14 s
    finally:
        getter.close()
        stop.set()
        server.close()
    sent = [line for line in request_lines if line]  # close() wakes accept() with no request
    assert len(sent) == 1  # one attempt (s3_max_attempts=1), answered by the trickle
    if route == "httpx-proxy":  # absolute-form: the request went through the proxy
        assert sent[0].startswith(f"GET http://127.0.0.1:{port}/".encode())
    else:
        assert sent[0].startswith(b"GET /")
