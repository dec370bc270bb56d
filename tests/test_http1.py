"""The header reads' HTTP/1.1 client (`bulkimg/http1.py`) against canned answers over loopback.

A one-connection server thread reads each request and writes the next canned answer, in pieces
of any size (hypothesis), so each way an answer can be delimited, kept alive or cut is met on a
real socket. What S3 itself answers through it is proven by the S3 fault matrix.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkimg import http1
from bulkimg.http1 import BodyCutShortError, ClosedBeforeAnswerError, ProtocolError


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
    from bulkimg.s3get import DirectSender, S3GetError

    with serving([LENGTH, b"<close>", LENGTH, b"<close>", b"<close>"]) as server:
        sender = DirectSender()
        url = f"http://127.0.0.1:{server.port}/b/k?X-Amz-Signature=1"
        assert sender.get(url, {}) == (206, b"hello")
        assert sender.get(url, {}) == (206, b"hello")  # closed under it: again, on a new one
        assert server.connections == 2
        with pytest.raises(S3GetError) as failed:  # closed, and the new one too: not again here
            sender.get(url, {})
        assert server.connections == 3
        assert failed.value.transient  # the getter's retries take it from there
        assert "X-Amz-Signature" not in str(failed.value)
        sender.close()
