"""A fault-injecting HTTP proxy on 127.0.0.1 in front of moto's S3 server (for the fault matrix).

The code under test talks to the proxy as to S3 (path-style, real sockets). Each request is
matched against the proxy's rules in order; the first rule with hits left decides what happens:

    status    answer with an S3 error (e.g. 503 SlowDown) instead of forwarding
    reset     close the socket without any answer (the client sees a connection reset)
    truncate  forward, then send the full Content-Length but only part of the body, and close
    delete    delete the object upstream, then forward (an object deleted after it was listed)
    call      run `hook()`, then forward (e.g. change the bucket between two listing pages)

Routes: GET (an object), LIST (ListObjectsV2; `key_contains` matches its prefix), HEAD,
or ANY. `list_page_size` makes every listing ask for that many keys a page, so a small bucket
still lists in several pages. `refuse` answers what S3 checks and moto does not (a request's
signing region, say): called with every request first, it returns an error answer or None.

`list_order = "directory"` makes the proxy answer ListObjectsV2 itself as a filer-backed S3
does (SeaweedFS, seen on 4.x): keys in directory order (path components compared in turn, so
`a/19/x` comes before `a/19-old/y`), and `StartAfter=a/19` read as "after the directory entry
19": none of `a/19/...` is listed. Continuation tokens and `Delimiter` work as in S3.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import struct
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit
from xml.etree import ElementTree

Route = Literal["GET", "LIST", "HEAD", "ANY"]
Action = Literal["status", "reset", "truncate", "delete", "call"]
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@dataclass(frozen=True)
class Refusal:
    """An S3 error answer `FaultProxy.refuse` gives instead of forwarding."""

    status: int
    code: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """What `FaultProxy.refuse` sees of a request."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lowercase names


@dataclass
class Fault:
    """One rule: which requests it hits (route, key substring, skip `after`), `count` times."""

    route: Route
    action: Action
    status: int = 503
    code: str = "SlowDown"
    count: int | None = 1  # None: every matching request
    key_contains: str = ""
    after: int = 0  # let this many matching requests through first
    keep_bytes: int = 100  # truncate: body bytes actually sent
    hook: Callable[[], None] | None = None
    seen: int = field(default=0, init=False)
    hits: int = field(default=0, init=False)

    def take(self, route: str, key: str) -> bool:
        """Whether this rule applies to the request (and count it)."""
        if self.route not in ("ANY", route) or self.key_contains not in key:
            return False
        if self.count is not None and self.hits >= self.count:
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        self.hits += 1
        return True


class FaultProxy:
    """The proxy's rules and what it saw; `url` is its endpoint."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.faults: list[Fault] = []
        self.requests: Counter[str] = Counter()  # by route, as received
        self.keys: Counter[str] = Counter()  # GET and HEAD requests by key
        self.injected: Counter[str] = Counter()  # by action
        self.list_page_size: int | None = None
        self.refuse: Callable[[Request], Refusal | None] | None = None
        self.refused: Counter[str] = Counter()  # by route
        self.list_order: Literal["s3", "directory"] = "s3"
        self.url = ""
        self._lock = threading.Lock()

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def match(self, route: str, key: str) -> Fault | None:
        with self._lock:
            self.requests[route] += 1
            if route in ("GET", "HEAD"):
                self.keys[key] += 1
            for fault in self.faults:
                if fault.take(route, key):
                    self.injected[fault.action] += 1
                    return fault
        return None

    def forward(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(*self.upstream, timeout=30)
        try:
            conn.request(method, target, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            return response.status, response.getheaders(), data
        finally:
            conn.close()

    def directory_listing(
        self, path: str, query: list[tuple[str, str]], headers: dict[str, str]
    ) -> bytes:
        """A ListObjectsV2 answer in a filer's order and StartAfter semantics (see above)."""
        params = dict(query)
        prefix, delimiter = params.get("prefix", ""), params.get("delimiter", "")
        max_keys = self.list_page_size or int(params.get("max-keys", "1000"))
        # every key under the prefix, from upstream (S3 order), then in directory order
        keep = [(k, v) for k, v in query if k not in _LIST_PAGING]
        rows: list[dict[str, str]] = []
        token = ""
        while True:
            page_query = [*keep, ("max-keys", "1000")]
            if token:
                page_query.append(("continuation-token", token))
            status, _, data = self.forward("GET", f"{path}?{urlencode(page_query)}", headers, b"")
            assert status == 200, data[:200]
            root = ElementTree.fromstring(data)
            for child in root:
                tag = child.tag.rpartition("}")[2]
                if tag == "Contents":
                    rows.append({f.tag.rpartition("}")[2]: f.text or "" for f in child})
                elif tag == "NextContinuationToken":
                    token = child.text or ""
            if root.findtext("{*}IsTruncated") != "true":
                break
        url_encoded = params.get("encoding-type") == "url"
        for row in rows:
            row["Key"] = unquote(row["Key"]) if url_encoded else row["Key"]
        rows = [r for r in rows if r["Key"].startswith(prefix)]
        prefixes: set[str] = set()
        if delimiter:
            direct = []
            for row in rows:
                cut = row["Key"].find(delimiter, len(prefix))
                if cut < 0:
                    direct.append(row)
                else:
                    prefixes.add(row["Key"][: cut + len(delimiter)])
            rows = direct
        rows.sort(key=lambda r: r["Key"].split("/"))
        if "continuation-token" in params:
            after = base64.urlsafe_b64decode(params["continuation-token"]).decode()
            rows = [r for r in rows if r["Key"].split("/") > after.split("/")]
        elif params.get("start-after"):
            after = params["start-after"]
            rows = [
                r
                for r in rows
                if r["Key"].split("/") > after.split("/") and not r["Key"].startswith(after + "/")
            ]
        page, truncated = rows[:max_keys], len(rows) > max_keys
        enc = (lambda k: quote(k, safe="/")) if url_encoded else (lambda k: k)
        parts = [
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
            f"<Name>{path.strip('/')}</Name><Prefix>{_xml(enc(prefix))}</Prefix>",
            f"<KeyCount>{len(page)}</KeyCount><MaxKeys>{max_keys}</MaxKeys>",
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
        ]
        if url_encoded:
            parts.append("<EncodingType>url</EncodingType>")
        if truncated:
            next_token = base64.urlsafe_b64encode(page[-1]["Key"].encode()).decode()
            parts.append(f"<NextContinuationToken>{next_token}</NextContinuationToken>")
        for row in page:
            parts.append(
                f"<Contents><Key>{_xml(enc(row['Key']))}</Key>"
                f"<LastModified>{row['LastModified']}</LastModified>"
                f"<ETag>{_xml(row['ETag'])}</ETag><Size>{row['Size']}</Size>"
                "<StorageClass>STANDARD</StorageClass></Contents>"
            )
        if not truncated:
            for common in sorted(prefixes):
                parts.append(
                    f"<CommonPrefixes><Prefix>{_xml(enc(common))}</Prefix></CommonPrefixes>"
                )
        parts.append("</ListBucketResult>")
        return "".join(parts).encode()


_LIST_PAGING = {"start-after", "continuation-token", "max-keys", "delimiter"}


def _xml(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def classify(method: str, path: str, query: str) -> tuple[str, str]:
    """(route, key) of a path-style S3 request: `/bucket/key`, or a listing and its prefix."""
    bucket_and_key = unquote(path.lstrip("/"))
    key = bucket_and_key.partition("/")[2]
    if method == "HEAD":
        return "HEAD", key
    if method == "GET" and key:
        return "GET", key
    if method == "GET" and "list-type" in query:
        return "LIST", dict(parse_qsl(query)).get("prefix", "")
    return method, key


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass  # the proxy logs nothing: requests carry a session token

        def do_GET(self) -> None:
            self.handle_any()

        def do_HEAD(self) -> None:
            self.handle_any()

        def do_PUT(self) -> None:
            self.handle_any()

        def do_DELETE(self) -> None:
            self.handle_any()

        def do_POST(self) -> None:
            self.handle_any()

        def handle_any(self) -> None:
            parts = urlsplit(self.path)
            route, key = classify(self.command, parts.path, parts.query)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            target = self.path
            if route == "LIST" and proxy.list_page_size is not None:
                query = [(k, v) for k, v in parse_qsl(parts.query) if k != "max-keys"]
                query.append(("max-keys", str(proxy.list_page_size)))
                target = f"{parts.path}?{urlencode(query)}"
            if proxy.refuse is not None:
                seen = Request(
                    self.command,
                    unquote(parts.path),
                    dict(parse_qsl(parts.query, keep_blank_values=True)),
                    {k.lower(): v for k, v in self.headers.items()},
                )
                refusal = proxy.refuse(seen)
                if refusal is not None:
                    with proxy._lock:
                        proxy.requests[route] += 1
                        proxy.refused[route] += 1
                    return self.error(Fault(route, "status", refusal.status, refusal.code),
                                      refusal.headers)  # fmt: skip
            fault = proxy.match(route, key)
            if fault is not None and fault.action == "status":
                return self.error(fault)
            if fault is not None and fault.action == "reset":
                return self.reset()
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            if fault is not None and fault.action == "delete":
                # moto wants credentials but checks no signature: the GET's headers will do,
                # or a presigned GET's query (its credentials are there, not in a header).
                plain = {k: v for k, v in headers.items() if k.lower() not in ("range", "if-match")}
                presigned = "authorization" not in {k.lower() for k in headers}
                deleted = proxy.forward(
                    "DELETE", self.path if presigned else parts.path, plain, b""
                )[0]
                assert deleted == 204, f"could not delete {key}: HTTP {deleted}"
            if fault is not None and fault.action == "call" and fault.hook is not None:
                fault.hook()
            if route == "LIST" and proxy.list_order == "directory":
                data = proxy.directory_listing(parts.path, parse_qsl(parts.query), headers)
                self.send_response_only(200)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return None
            status, answer_headers, data = proxy.forward(self.command, target, headers, body)
            self.send_response_only(status)
            for name, value in answer_headers:
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            if self.command == "HEAD":
                self.send_header("Content-Length", dict(answer_headers).get("Content-Length", "0"))
            else:
                self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command == "HEAD":
                return None
            if fault is not None and fault.action == "truncate":
                self.wfile.write(data[: min(fault.keep_bytes, max(len(data) - 1, 0))])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)  # a clean end, too early
                self.close_connection = True
                return None
            self.wfile.write(data)
            return None

        def error(self, fault: Fault, headers: dict[str, str] | None = None) -> None:
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Error><Code>{fault.code}</Code><Message>injected {fault.code}</Message>"
                "<RequestId>FAULT</RequestId></Error>"
            ).encode()
            self.send_response_only(fault.status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def reset(self) -> None:
            """Close the socket at once with a TCP reset (no answer, or the rest of one)."""
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    return Handler


@contextmanager
def fault_proxy(upstream: str, tls: ssl.SSLContext | None = None) -> Iterator[FaultProxy]:
    """A FaultProxy serving on 127.0.0.1 (a free port) for the duration of the block; over
    HTTPS with `tls` (a server context: its certificate)."""
    proxy = FaultProxy(upstream)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    scheme = "http"
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    proxy.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="s3-fault-proxy", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
