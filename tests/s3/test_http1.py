"""The header reads' HTTP/1.1 client (`bulkimg/s3/http1.py`) against canned answers over loopback.

A one-connection server thread reads each request and writes the next canned answer, in pieces
of any size (hypothesis), so each way an answer can be delimited, kept alive or cut is met on a
real socket. What S3 itself answers through it is proven by the S3 fault matrix.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkimg.s3 import http1
from bulkimg.s3.http1 import BodyCutShortError, ClosedBeforeAnswerError, ProtocolError
from tests.helpers.fixtures import MakeSettings
from tests.helpers.http1 import ScriptedServer, read_request, reset, trickle


class CannedServer:
    """Answers each request on one connection with the next of `answers` (bytes), written in
    pieces of `piece` bytes; after the last answer, closes the connection. Records requests."""

    def __init__(self, answers: list[bytes], piece: int = 1 << 20) -> None:
        self.answers = answers
        self.piece = piece
        self.requests: list[bytes] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        pending = list(self.answers)
        while pending:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn, conn.makefile("rb") as reader:  # both closed: the peer sees the end
                while pending:
                    head = b""
                    while not head.endswith(b"\r\n\r\n"):
                        line = reader.readline()
                        if not line:
                            break
                        head += line
                    if not head:
                        break
                    self.requests.append(head)
                    answer = pending.pop(0)
                    if answer == b"<close>":  # a kept-alive connection the server has closed
                        break
                    for start in range(0, len(answer), self.piece):
                        conn.sendall(answer[start : start + self.piece])
                    if b"Connection: close" in answer or not pending:
                        break

    def close(self) -> None:
        self._listener.close()
        self._thread.join(5)


@contextmanager
def serving(answers: list[bytes], piece: int = 1 << 20) -> Iterator[CannedServer]:
    server = CannedServer(answers, piece)
    try:
        yield server
    finally:
        server.close()


def connect(server: CannedServer, read_timeout: float = 5.0) -> http1.Connection:
    return http1.Connection(
        "http", "127.0.0.1", server.port, connect_timeout=5, read_timeout=read_timeout
    )


def assert_get_raises(answer: bytes, error: type[Exception]) -> None:
    """A GET answered with `answer` raises `error`."""
    with serving([answer]) as server:
        conn = connect(server)
        with pytest.raises(error):
            conn.get("/k", {})
        conn.close()


LENGTH = b'HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\nETag: "e"\r\n\r\nhello'
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nTrailer-Field: x\r\n\r\n"
)
UNTIL_CLOSE = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello"
HTTP10 = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello"
INTERIM = b"HTTP/1.1 100 Continue\r\n\r\n" + LENGTH
NOT_MODIFIED = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n"
ERROR = (
    b"HTTP/1.1 412 Precondition Failed\r\nContent-Type: application/xml\r\n"
    b"Content-Length: 53\r\n\r\n<Error><Code>PreconditionFailed</Code></Error>\n\n\n\n\n\n\n"
)


@settings(max_examples=25, deadline=None)
@given(piece=st.integers(1, 80))
def test_each_delimiting_of_a_body_reads_the_same_in_any_pieces(piece: int) -> None:
    answers = [LENGTH, CHUNKED, INTERIM, NOT_MODIFIED, ERROR, UNTIL_CLOSE]
    with serving(answers, piece) as server:
        conn = connect(server)
        got = [conn.get("/b/k?X-Amz-Signature=1", {"Range": "bytes=0-4"}) for _ in answers]
        assert [(a.status, a.body) for a in got] == [
            (206, b"hello"),
            (200, b"hello"),
            (206, b"hello"),
            (304, b""),
            (412, b"<Error><Code>PreconditionFailed</Code></Error>\n\n\n\n\n\n\n"),
            (200, b"hello"),
        ]
        assert got[0].headers["etag"] == '"e"'
        assert server.connections == 1  # one connection kept alive for all six
        assert not conn.reusable  # the last said Connection: close
        conn.close()


def test_the_request_is_a_plain_get_with_the_signed_host() -> None:
    with serving([LENGTH]) as server:
        conn = connect(server)
        conn.get("/bucket/a%20b.jpg?X-Amz-Signature=abc", {"Range": "bytes=0-4", "If-Match": '"e"'})
        conn.close()
    assert server.requests == [
        b"GET /bucket/a%20b.jpg?X-Amz-Signature=abc HTTP/1.1\r\n"
        + f"Host: 127.0.0.1:{server.port}\r\n".encode()
        + b'Range: bytes=0-4\r\nIf-Match: "e"\r\n\r\n'
    ]


def test_an_http10_answer_without_keep_alive_ends_the_connection() -> None:
    with serving([HTTP10]) as server:
        conn = connect(server)
        assert conn.get("/k", {}).body == b"hello"
        assert not conn.reusable
        conn.close()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",  # the connection ends early
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",  # no last chunk
        b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello",
    ],
    ids=["short", "chunk-cut", "chunk-size", "no-last-chunk", "bad-length"],
)
def test_a_body_cut_short_or_malformed_is_said_so(answer: bytes) -> None:
    assert_get_raises(answer, BodyCutShortError)


def test_a_body_that_stalls_past_the_read_timeout_is_cut_short() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve() -> None:
        peer, _ = listener.accept()
        accepted.append(peer)
        peer.recv(1024)
        peer.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel")  # then nothing

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    conn = http1.Connection(
        "http", "127.0.0.1", listener.getsockname()[1], connect_timeout=5, read_timeout=0.3
    )
    with pytest.raises(BodyCutShortError, match="TimeoutError"):
        conn.get("/k", {})
    conn.close()
    thread.join(5)
    for peer in accepted:
        peer.close()
    listener.close()


def test_a_connection_closed_before_the_answer_is_told_apart() -> None:
    with serving([LENGTH, b"<close>"]) as server:
        conn = connect(server)
        assert conn.get("/k", {}).body == b"hello"
        with pytest.raises(ClosedBeforeAnswerError):
            conn.get("/k", {})  # the server closed the kept-alive connection: may go again
        conn.close()


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n",
        b"HTTP/1.1 2x0 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
    ],
)
def test_bytes_that_are_not_an_http_answer_are_a_protocol_error(answer: bytes) -> None:
    assert_get_raises(answer, ProtocolError)


@pytest.mark.parametrize(
    ("target", "headers"),
    [("/k\r\nX-Evil: 1", {}), ("/k", {"Range": "bytes=0-1\r\nX-Evil: 1"}), ("/a b", {})],
)
def test_a_line_break_in_the_request_is_refused_before_sending(
    target: str, headers: dict[str, str]
) -> None:
    with serving([LENGTH]) as server:
        conn = connect(server)
        with pytest.raises(ValueError, match="line break"):
            conn.get(target, headers)
        conn.close()
        assert server.requests == []


def test_host_header_leaves_out_the_default_port_and_brackets_ipv6() -> None:
    assert http1._host_header("s3.amazonaws.com", None, 443) == "s3.amazonaws.com"
    assert http1._host_header("s3.amazonaws.com", 443, 443) == "s3.amazonaws.com"
    assert http1._host_header("127.0.0.1", 9000, 80) == "127.0.0.1:9000"
    assert http1._host_header("::1", 9000, 80) == "[::1]:9000"


def test_the_direct_sender_sends_again_once_when_a_kept_alive_connection_was_closed() -> None:
    from bulkimg.s3.get import DirectSender, Reply, S3GetError

    with serving([LENGTH, b"<close>", LENGTH, b"<close>", b"<close>"]) as server:
        sender = DirectSender()
        url = f"http://127.0.0.1:{server.port}/b/k?X-Amz-Signature=1"
        assert sender.get(url, {}, limit=5) == Reply(206, b"hello", etag='"e"')
        assert sender.get(url, {}, limit=5) == Reply(
            206, b"hello", etag='"e"'
        )  # closed under it: again, on a new one
        assert server.connections == 2
        with pytest.raises(S3GetError) as failed:  # closed, and the new one too: not again here
            sender.get(url, {}, limit=5)
        assert server.connections == 3
        assert failed.value.transient  # the getter's retries take it from there
        assert "X-Amz-Signature" not in str(failed.value)
        sender.close()


# --- deadlines, body caps, resets ---------------------------------------------------------------


@pytest.mark.fault_matrix(
    area="S3",
    fault="a GET whose body (or status line and headers) trickles in, a byte every 50 ms, each"
    " within the read timeout",
    outcome="cut at the GET's overall deadline: body cut short (read again, then the group"
    " deferred), a trickling head a timeout (retried); the worker is free again",
)
@pytest.mark.parametrize("where", ["body", "head"])
def test_an_answer_that_trickles_in_ends_at_the_deadline(where: str) -> None:
    head = b"HTTP/1.1 206 Partial Content\r\nContent-Length: 1000\r\n\r\n"
    stop = threading.Event()

    def script(conn: socket.socket, _: int) -> None:
        read_request(conn)
        if where == "body":
            conn.sendall(head)
            trickle(conn, b"x" * 1000, stop)  # 50 s in all
        else:
            trickle(conn, head + b"x" * 1000, stop)

    server = ScriptedServer(script)
    conn = http1.Connection("http", "127.0.0.1", server.port, connect_timeout=5, read_timeout=5)
    started = time.monotonic()
    error = BodyCutShortError if where == "body" else http1.DeadlineExceededError
    with pytest.raises(error, match=r"DeadlineExceeded|deadline"):
        conn.get("/k", {}, deadline=started + 0.6)
    assert time.monotonic() - started < 5  # the read timeout alone never ends a trickle
    conn.close()
    stop.set()
    server.close()


@pytest.mark.parametrize("delimiting", ["length", "chunked", "until-close"])
def test_a_body_longer_than_the_limit_is_read_only_that_far(delimiting: str) -> None:
    """The server sends 64 KiB of a 10 MB body and then stalls: a client reading past its limit
    would wait for the rest and time out."""
    stop = threading.Event()
    first = bytes(range(256)) * 256

    def script(conn: socket.socket, _: int) -> None:
        read_request(conn)
        if delimiting == "length":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + first)
        elif delimiting == "chunked":
            chunks = b"".join(
                b"1000\r\n" + first[i : i + 4096] + b"\r\n" for i in range(0, 65536, 4096)
            )
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
        else:
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + first)
        stop.wait(30)

    server = ScriptedServer(script)
    conn = http1.Connection("http", "127.0.0.1", server.port, connect_timeout=5, read_timeout=3)
    answer = conn.get("/k", {"Range": "bytes=0-9999"}, limit=10_000)
    assert (answer.status, answer.body, answer.complete) == (200, first[:10_000], False)
    assert not conn.reusable  # the rest of the body is still coming: never reused
    conn.close()
    stop.set()
    server.close()


def test_an_error_answer_is_read_up_to_its_own_limit_whatever_the_gets() -> None:
    xml = b"<Error><Code>NoSuchKey</Code></Error>" + b" " * 100
    answer = b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n" % len(xml) + xml
    with serving([answer]) as server:
        conn = connect(server)
        got = conn.get("/k", {"Range": "bytes=0-4"}, limit=5)
        assert (got.status, got.body, got.complete) == (404, xml, True)
        conn.close()


@pytest.mark.fault_matrix(
    area="S3",
    fault="a kept-alive connection reset by the peer: while idle (the next request's write"
    " fails) or on the next request (no answer)",
    outcome="the GET is sent again at once on a new connection, once: no backoff, counted as one"
    " attempt",
)
@pytest.mark.parametrize("when", ["idle", "on-request"])
def test_a_reset_kept_alive_connection_is_sent_again_at_once(
    when: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bulkimg.s3.get import DirectSender, Reply

    answered = threading.Event()

    def script(conn: socket.socket, n: int) -> None:
        read_request(conn)
        conn.sendall(LENGTH)
        answered.set()
        if n == 0:  # the first connection is reset: at once, or when the next request comes
            if when == "on-request":
                read_request(conn)
            reset(conn)
            return
        threading.Event().wait(1)

    sleeps: list[float] = []
    monkeypatch.setattr("bulkimg.s3.get.time.sleep", sleeps.append)
    server = ScriptedServer(script)
    sender = DirectSender()
    url = f"http://127.0.0.1:{server.port}/b/k?X-Amz-Signature=1"
    assert sender.get(url, {}, limit=5) == Reply(206, b"hello", etag='"e"')
    assert answered.wait(5)
    threading.Event().wait(0.2)  # the reset reaches the client
    assert sender.get(url, {}, limit=5) == Reply(206, b"hello", etag='"e"')
    assert server.connections == 2
    assert sleeps == []
    sender.close()
    server.close()


@pytest.mark.parametrize("when", ["idle", "on-request"])
def test_the_httpx_sender_sends_again_at_once_on_a_reset_kept_alive_connection(
    when: str, make_settings: MakeSettings
) -> None:
    # The sender used behind proxies: the same promise as the direct one.
    from bulkimg.s3.get import HttpxSender, Reply
    from bulkimg.s3.options import S3Options

    answered = threading.Event()

    def script(conn: socket.socket, n: int) -> None:
        read_request(conn)
        conn.sendall(LENGTH)
        answered.set()
        if n == 0:
            if when == "on-request":
                read_request(conn)
            reset(conn)
            return
        threading.Event().wait(1)

    server = ScriptedServer(script)
    sender = HttpxSender(S3Options.from_settings(make_settings()))
    url = f"http://127.0.0.1:{server.port}/b/k?X-Amz-Signature=1"
    try:
        assert sender.get(url, {}, limit=5) == Reply(206, b"hello", etag='"e"')
        assert answered.wait(5)
        threading.Event().wait(0.2)  # the reset reaches the client
        assert sender.get(url, {}, limit=5) == Reply(206, b"hello", etag='"e"')
        assert server.connections == 2
    finally:
        sender.close()
        server.close()
