"""A minimal HTTP/1.1 client for S3 GETs on one kept-alive connection: nothing but GET.

`http.client` parses every answer's headers with the email package, about half of what a
header read costs in CPU in all (docs/performance.md). An answer to a GET needs none of it: a
status line, header lines, and a body delimited by Content-Length, chunked coding or the end of the
connection (RFC 9112). Everything else a general client does (proxies, redirects, decoding,
cookies, request bodies) the header reads do not need; `get.HttpxSender` is used where a proxy
applies.

Each GET may carry a deadline (a trickling answer, each byte within the read timeout, would
hold the connection forever) and a limit on the body's bytes (a server that answers a ranged GET
with the whole object is read only as far as the caller needs): reads stop there.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_LINE = 65_536  # a status or header line longer than this is not an S3 answer
MAX_HEADERS = 200
# Any answer but 200/206 is read this far at most (S3's error XML is a few hundred bytes).
MAX_OTHER_BODY = 64 * 1024
_NO_BODY = frozenset({204, 304})


class ProtocolError(Exception):
    """The peer's bytes are not an HTTP/1.1 answer."""


class ClosedBeforeAnswerError(ConnectionError):
    """The connection ended before the first byte of the answer (a kept-alive connection the
    server closed, or a reset): the request was not answered and may go again."""


class DeadlineExceededError(TimeoutError):
    """The answer did not arrive whole before the GET's deadline."""


class BodyCutShortError(Exception):
    """The answer's body ended before its length, stalled past the timeout, or was malformed:
    worth reading again (for every GET path of the header reads, boto3's included)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # lowercase names; a repeated header keeps its last value
    body: bytes
    complete: bool = True  # False: the body went on past the limit; the rest was not read


class Connection:
    """One connection to `host`; `get` sends a request and reads its whole answer.

    Not thread-safe: one per thread. After an error its state is unknown: close it.
    """

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int | None,
        *,
        connect_timeout: float,
        read_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if scheme not in ("http", "https"):
            raise ValueError(f"unsupported scheme {scheme!r}")
        default = 443 if scheme == "https" else 80
        self.host_header = _host_header(host, port, default)
        sock = socket.create_connection((host, port or default), connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if scheme == "https":
                context = ssl_context or ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=host)
            sock.settimeout(read_timeout)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._file = sock.makefile("rb")
        self._read_timeout = read_timeout
        self._deadline: float | None = None  # of the GET in progress (time.monotonic())
        self.reusable = True  # False once an answer said the connection ends with it

    def close(self) -> None:
        self.reusable = False
        self._file.close()
        self._sock.close()

    def get(
        self,
        target: str,
        headers: dict[str, str],
        *,
        deadline: float | None = None,
        limit: int | None = None,
    ) -> Answer:
        """GET `target` (path and query, already escaped). Raises OSError (no answer; past
        `deadline`, a `time.monotonic()` value: DeadlineExceededError), ClosedBeforeAnswerError,
        ProtocolError or BodyCutShortError (also when the deadline passes inside the body).

        A 200/206 body longer than `limit` bytes (any other longer than MAX_OTHER_BODY) is read
        that far: the answer is not `complete` and the connection is not reusable.
        """
        parts = (target, *headers, *headers.values())
        if " " in target or any("\r" in part or "\n" in part for part in parts):
            raise ValueError("a request target or header holds a line break or a space")
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += ["", ""]
        self._deadline = deadline
        if deadline is None:
            self._sock.settimeout(self._read_timeout)  # an earlier GET's deadline may have cut it
        self._arm()
        try:
            self._sock.sendall("\r\n".join(lines).encode("latin-1"))
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as exc:
            # a kept-alive connection the server reset while it was idle: nothing was answered
            raise ClosedBeforeAnswerError(str(exc)) from None
        status, version, fields = self._read_head()
        while 100 <= status < 200:  # an interim answer (none is asked for): the real one follows
            status, version, fields = self._read_head()
        connection = fields.get("connection", "").lower()
        if (version == "HTTP/1.0" and "keep-alive" not in connection) or "close" in connection:
            self.reusable = False
        if status not in (200, 206):
            limit = MAX_OTHER_BODY
        body, complete = self._read_body(status, fields, limit)
        if not complete:
            self.reusable = False  # the rest of the body is still on its way
        return Answer(status, fields, body, complete)

    def _arm(self) -> None:
        """Let the next read wait no longer than the read timeout, nor past the deadline."""
        if self._deadline is None:
            return
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceededError("the GET's deadline passed")
        self._sock.settimeout(min(self._read_timeout, left))

    def _timed(self, read: Callable[[int], bytes], size: int) -> bytes:
        """`read(size)`; a read timed out by the deadline is DeadlineExceededError."""
        try:
            return read(size)
        except TimeoutError:
            if self._deadline is not None and time.monotonic() >= self._deadline:
                raise DeadlineExceededError("the GET's deadline passed") from None
            raise

    def _readline(self) -> bytes:
        """A line (with its LF), or what came before the end of the connection, or MAX_LINE + 1
        bytes without an LF. Each read from the socket waits until the deadline at most."""
        self._arm()
        held = self._timed(self._file.peek, 1)  # what is buffered, or one read from the socket
        end = held.find(b"\n", 0, MAX_LINE + 1)
        if end >= 0:
            return self._file.read(end + 1)  # from the buffer
        parts: list[bytes] = []
        size = 0
        while held and size <= MAX_LINE:
            end = held.find(b"\n", 0, MAX_LINE + 1 - size)
            take = end + 1 if end >= 0 else min(len(held), MAX_LINE + 1 - size)
            parts.append(self._file.read(take))
            size += take
            if end >= 0:
                break
            self._arm()
            held = self._timed(self._file.peek, 1)
        return b"".join(parts)

    def _read(self, size: int) -> bytes:
        """Up to `size` bytes: fewer only when the connection ends. Each read from the socket
        waits until the deadline at most."""
        parts: list[bytes] = []
        left = size
        while left > 0:
            self._arm()
            chunk = self._timed(self._file.read1, min(left, 1 << 20))  # buffered, or one recv
            if not chunk:
                break
            parts.append(chunk)
            left -= len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def _read_head(self) -> tuple[int, str, dict[str, str]]:
        try:
            self._arm()
            held = self._timed(self._file.peek, 1)
            end = held.find(b"\r\n\r\n", 0, MAX_LINE)
            if end >= 0:  # the whole head is buffered (as S3 sends it): split it at once
                lines = self._file.read(end + 4).split(b"\r\n")[:-2]
                return self._parse_head(lines[0], lines[1:], crlf=False)
            line = self._readline()
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as exc:
            raise ClosedBeforeAnswerError(str(exc)) from None
        if not line:
            raise ClosedBeforeAnswerError("the connection closed before an answer")
        fields: list[bytes] = []
        for _ in range(MAX_HEADERS):
            field = self._readline()
            if field in (b"\r\n", b"\n"):
                return self._parse_head(line, fields, crlf=True)
            fields.append(field)
        raise ProtocolError(f"more than {MAX_HEADERS} header lines")

    @staticmethod
    def _parse_head(
        line: bytes, lines: list[bytes], *, crlf: bool
    ) -> tuple[int, str, dict[str, str]]:
        """Status and header fields from the status line and the header lines (each still
        ending in its line break when `crlf`)."""
        version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {line[:40]!r}")
        if len(lines) > MAX_HEADERS:
            raise ProtocolError(f"more than {MAX_HEADERS} header lines")
        fields: dict[str, str] = {}
        for field in lines:
            name, colon, value = field.decode("latin-1").partition(":")
            cut = not field.endswith(b"\n") if crlf else b"\n" in field
            if not colon or len(field) > MAX_LINE or cut:
                raise ProtocolError("a malformed or cut header line")
            fields[name.strip().lower()] = value.strip()
        return int(code), version, fields

    def _read_body(
        self, status: int, fields: dict[str, str], limit: int | None
    ) -> tuple[bytes, bool]:
        """The body (up to `limit` bytes) and whether that is all of it."""
        if status in _NO_BODY:
            return b"", True
        cap = limit if limit is not None else -1
        try:
            if "chunked" in fields.get("transfer-encoding", "").lower():
                return self._read_chunked(cap)
            length = fields.get("content-length")
            if length is None:  # delimited by the end of the connection
                self.reusable = False
                body = self._read(cap if cap >= 0 else 1 << 62)
                return body, len(body) != cap  # at the limit: there may be more (never waited for)
            if not length.isdigit():
                raise BodyCutShortError(f"Content-Length {length[:20]!r}")
            want = int(length) if cap < 0 else min(int(length), cap)
            body = self._read(want)
        except (OSError, ValueError) as exc:  # reset or timed out mid-body, a bad chunk size
            raise BodyCutShortError(type(exc).__name__) from None
        if len(body) != want:
            raise BodyCutShortError(f"IncompleteRead({len(body)} of {length} bytes)")
        return body, want == int(length)

    def _read_chunked(self, cap: int) -> tuple[bytes, bool]:
        parts: list[bytes] = []
        held = 0
        while True:
            size_line = self._readline()
            if not size_line.endswith(b"\n"):
                raise BodyCutShortError("a cut chunk size line")
            size = int(size_line.split(b";", 1)[0].strip(), 16)  # ValueError: malformed
            if size == 0:
                break
            if 0 <= cap < held + size:  # past the limit: read up to it, leave the rest
                parts.append(self._read(cap - held))
                body = b"".join(parts)
                if len(body) != cap:
                    raise BodyCutShortError("IncompleteRead (a chunk cut short)")
                return body, False
            chunk = self._read(size)
            if len(chunk) != size or self._readline() not in (b"\r\n", b"\n"):
                raise BodyCutShortError("IncompleteRead (a chunk cut short)")
            parts.append(chunk)
            held += size
        for _ in range(MAX_HEADERS):  # trailer fields, then the blank line
            line = self._readline()
            if line in (b"\r\n", b"\n"):
                return b"".join(parts), True
            if not line.endswith(b"\n"):
                break
        raise BodyCutShortError("the chunked body's end is missing")


def _host_header(host: str, port: int | None, default: int) -> str:
    """Host as botocore signs it: IPv6 in brackets, the port only when not the default."""
    name = f"[{host}]" if ":" in host else host
    return name if port in (None, default) else f"{name}:{port}"
