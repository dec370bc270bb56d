"""A minimal HTTP/1.1 client for S3 GETs on one kept-alive connection: nothing but GET.

`http.client` parses every answer's headers with the email package: ~0.25 ms of CPU per answer,
half of what a header read costs in all. An answer to a GET needs none of it: a status line,
header lines, and a body delimited by Content-Length, chunked coding or the end of the
connection (RFC 9112). Everything else a general client does (proxies, redirects, decoding,
cookies, request bodies) the header reads do not need; `s3get.HttpxSender` is used where a proxy
applies.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

MAX_LINE = 65_536  # a status or header line longer than this is not an S3 answer
MAX_HEADERS = 200
_NO_BODY = frozenset({204, 304})


class ProtocolError(Exception):
    """The peer's bytes are not an HTTP/1.1 answer."""


class ClosedBeforeAnswerError(ConnectionError):
    """The connection ended before the first byte of the answer (a kept-alive connection the
    server closed, or a reset): the request was not answered and may go again."""


class BodyCutShortError(Exception):
    """The answer's body ended before its length, stalled past the timeout, or was malformed:
    worth reading again (for every GET path of the header reads, boto3's included)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # lowercase names; a repeated header keeps its last value
    body: bytes


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
        self.reusable = True  # False once an answer said the connection ends with it

    def close(self) -> None:
        self.reusable = False
        self._file.close()
        self._sock.close()

    def get(self, target: str, headers: dict[str, str]) -> Answer:
        """GET `target` (path and query, already escaped). Raises OSError (no answer),
        ClosedBeforeAnswerError, ProtocolError or BodyCutShortError."""
        parts = (target, *headers, *headers.values())
        if " " in target or any("\r" in part or "\n" in part for part in parts):
            raise ValueError("a request target or header holds a line break or a space")
        lines = [f"GET {target} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += ["", ""]
        self._sock.sendall("\r\n".join(lines).encode("latin-1"))
        status, version, fields = self._read_head()
        while 100 <= status < 200:  # an interim answer (none is asked for): the real one follows
            status, version, fields = self._read_head()
        connection = fields.get("connection", "").lower()
        if (version == "HTTP/1.0" and "keep-alive" not in connection) or "close" in connection:
            self.reusable = False
        return Answer(status, fields, self._read_body(status, fields))

    def _read_head(self) -> tuple[int, str, dict[str, str]]:
        try:
            line = self._file.readline(MAX_LINE + 1)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as exc:
            raise ClosedBeforeAnswerError(str(exc)) from None
        if not line:
            raise ClosedBeforeAnswerError("the connection closed before an answer")
        version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ProtocolError(f"not an HTTP/1.x status line: {line[:40]!r}")
        fields: dict[str, str] = {}
        for _ in range(MAX_HEADERS):
            line = self._file.readline(MAX_LINE + 1)
            if line in (b"\r\n", b"\n"):
                return int(code), version, fields
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon or len(line) > MAX_LINE or not line.endswith(b"\n"):
                raise ProtocolError("a malformed or cut header line")
            fields[name.strip().lower()] = value.strip()
        raise ProtocolError(f"more than {MAX_HEADERS} header lines")

    def _read_body(self, status: int, fields: dict[str, str]) -> bytes:
        if status in _NO_BODY:
            return b""
        try:
            if "chunked" in fields.get("transfer-encoding", "").lower():
                return self._read_chunked()
            length = fields.get("content-length")
            if length is None:  # delimited by the end of the connection
                self.reusable = False
                return self._file.read()
            if not length.isdigit():
                raise BodyCutShortError(f"Content-Length {length[:20]!r}")
            body = self._file.read(int(length))
        except (OSError, ValueError) as exc:  # reset or timed out mid-body, a bad chunk size
            raise BodyCutShortError(type(exc).__name__) from None
        if len(body) != int(length):
            raise BodyCutShortError(f"IncompleteRead({len(body)} of {length} bytes)")
        return body

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = self._file.readline(MAX_LINE + 1)
            if not size_line.endswith(b"\n"):
                raise BodyCutShortError("a cut chunk size line")
            size = int(size_line.split(b";", 1)[0].strip(), 16)  # ValueError: malformed
            if size == 0:
                break
            chunk = self._file.read(size)
            if len(chunk) != size or self._file.readline(3) not in (b"\r\n", b"\n"):
                raise BodyCutShortError("IncompleteRead (a chunk cut short)")
            parts.append(chunk)
        for _ in range(MAX_HEADERS):  # trailer fields, then the blank line
            line = self._file.readline(MAX_LINE + 1)
            if line in (b"\r\n", b"\n"):
                return b"".join(parts)
            if not line.endswith(b"\n"):
                break
        raise BodyCutShortError("the chunked body's end is missing")


def _host_header(host: str, port: int | None, default: int) -> str:
    """Host as botocore signs it: IPv6 in brackets, the port only when not the default."""
    name = f"[{host}]" if ":" in host else host
    return name if port in (None, default) else f"{name}:{port}"
