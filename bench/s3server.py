"""moto's S3 on loopback in its own process, loaded with a world, with a latency per request.

`python -m bench.s3server --world DIR --port N --latency-ms 20` loads every object of the world
straight into moto's S3 backend (no HTTP), then serves moto's S3 app with werkzeug (threaded)
behind a middleware that sleeps `latency` before each request, as the round
trip to an in-region S3 would. It prints `ready` when it serves.

Three changes make moto behave like S3 at catalog scale, without changing any answer:
- moto lists a prefix by scanning every key of the bucket (O(bucket) per LIST), and ListObjectsV2
  then skips to StartAfter or the continuation token by a linear scan; here listing uses a sorted
  index of the bucket's keys, rebuilt after any write: a ListObjectsV2 without delimiter bisects
  to max(Prefix, StartAfter) and reads one page (O(log n + page)).
- moto's app is served directly (`create_backend_app("s3")`), not behind its all-services host
  dispatcher (which doubles the server's CPU per request).
- plain GETs and HEADs of an object (`ObjectFastPath`) are answered from moto's backend with
  moto's status, headers and bytes, without moto's ~3 ms of CPU per request: on a 2-core machine
  the server shares the client's cores, and S3's own CPU is not the client's cost. Both designs
  benefit; the bench's test checks the answers equal moto's.

Connections are kept alive (HTTP/1.1) for the fast path's answers, as S3 does: werkzeug's
server closes the connection after every answer (it cannot drain a request body it did not
read), which made each request cost a TCP connection and a server thread. A fast-path request
has no body, so `KeepAliveHandler` answers it and keeps the connection; everything else goes to
werkzeug (and its connection closes after the answer, as before).
"""

from __future__ import annotations

import argparse
import bisect
import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BUCKET = "bench-media"
ACCESS_KEY = "bench-access-key"
SECRET_KEY = "bench-secret-key"  # noqa: S105 - moto accepts anything; reaches no AWS account
REGION = "us-east-1"

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class LatencyMiddleware:
    """Sleeps before every request (GIL released) and counts requests by method."""

    def __init__(self, app: WsgiApp, latency: float) -> None:
        self.app = app
        self.latency = latency
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        self.delay(environ)
        return self.app(environ, start_response)

    def delay(self, environ: dict[str, Any]) -> None:
        """Count the request and sleep the latency (also for answers given outside the app)."""
        with self._lock:
            self.requests[str(environ.get("REQUEST_METHOD"))] += 1
        if self.latency > 0:
            time.sleep(self.latency)


class ObjectFastPath:
    """Answers plain GET and HEAD of an object straight from moto's backend, as moto would.

    moto spends ~3 ms of CPU on every request (its dispatcher, auth checks, XML templates); real
    S3 spends its CPU on its own machines, not on the client's cores. For the requests both
    designs make by the ten thousand — a GET (whole or one byte range, optionally `If-Match`)
    or a HEAD of an existing object — this answers with moto's status, headers and bytes for a
    fraction of that CPU. Anything else (listings, writes, sub-resources, conditions that fail,
    missing keys, ranges it does not parse) goes to moto unchanged.
    """

    def __init__(self, app: WsgiApp) -> None:
        self.app = app
        self.answered = 0  # requests answered here, not by moto

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        answer = self.answer(environ)
        if answer is None:
            return self.app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def answer(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        """The fast path's answer (status, headers, body), or None: moto answers."""
        answer = self._answer(environ)
        if answer is not None:
            self.answered += 1
        return answer

    def _answer(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes] | None:
        method = environ.get("REQUEST_METHOD")
        query = environ.get("QUERY_STRING", "")
        if method == "GET" and "list-type=2" in query:
            return _list_page(environ, query)
        if method not in ("GET", "HEAD") or _has_subresource(query):
            return None
        if any(h in environ for h in ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE")):
            return None
        # WSGI: PATH_INFO is percent-decoded, its UTF-8 bytes carried as latin-1 text.
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        bucket_name, _, key_name = path.lstrip("/").partition("/")
        obj = _live_object(bucket_name, key_name)
        if obj is None:
            return None
        if environ.get("HTTP_IF_MATCH", obj.etag) != obj.etag:
            return None  # moto answers 412
        value: bytes = obj.value
        size = len(value)
        first, last = 0, size - 1
        status = "200 OK"
        headers = [
            ("Content-Type", str(obj.metadata.get("content-type", "binary/octet-stream"))),
            ("ETag", obj.etag),
            ("Last-Modified", obj.last_modified_RFC1123),
            ("Accept-Ranges", "bytes"),
        ]
        if "HTTP_RANGE" in environ:
            parsed = _byte_range(environ["HTTP_RANGE"], size)
            if parsed is None:
                return None
            first, last = parsed
            status = "206 Partial Content"
            headers.append(("Content-Range", f"bytes {first}-{last}/{size}"))
        body = value[first : last + 1]
        headers.append(("Content-Length", str(len(body))))
        return status, headers, b"" if method == "HEAD" else body


def _list_page(
    environ: dict[str, Any], query: str
) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """A ListObjectsV2 page without delimiter: moto's own backend call (the sorted index), its
    fields as moto's S3 responder fills them, serialized here (moto's generic serializer costs
    ~2 ms per key: 2 s per 1,000-key page). With a delimiter or owner, moto answers."""
    from urllib.parse import parse_qs, quote
    from xml.sax.saxutils import escape

    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
    path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
    bucket_name = path.strip("/")
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    bucket = backend.buckets.get(bucket_name)
    token = params.get("continuation-token")
    if bucket is None or "/" in bucket_name or "delimiter" in params or "fetch-owner" in params:
        return None
    if token == "" or (token is not None and token not in backend._pagination_tokens):
        return None  # moto's error answers
    prefix, start_after = params.get("prefix"), params.get("start-after")
    max_keys = int(params.get("max-keys", "1000"))
    keys, truncated, next_token = backend.list_objects_v2(
        bucket=bucket, prefix=prefix, delimiter=None, continuation_token=token,
        start_after=start_after, max_keys=max_keys,
    )  # fmt: skip
    url = params.get("encoding-type") == "url"

    def text(value: object) -> str:
        return escape(str(value), {'"': "&quot;"})

    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
        f"<Name>{text(bucket.name)}</Name>",
        f"<Prefix>{text(quote(prefix) if url and prefix else prefix or '')}</Prefix>",
        f"<MaxKeys>{max_keys}</MaxKeys><KeyCount>{len(keys)}</KeyCount>",
        f"<IsTruncated>{str(truncated).lower()}</IsTruncated>",
    ]
    parts += [
        f"<Contents><Key>{text(key.safe_name('url' if url else None))}</Key>"
        f"<LastModified>{key.last_modified_ISO8601}</LastModified><ETag>{text(key.etag)}</ETag>"
        f"<Size>{key.size}</Size><StorageClass>{key.storage_class}</StorageClass>"
        + (
            f"<ChecksumAlgorithm>{key.checksum_algorithm}</ChecksumAlgorithm>"
            * bool(key.checksum_algorithm)
        )
        + "</Contents>"
        for key in keys
    ]
    if url:
        parts.append("<EncodingType>url</EncodingType>")
    if next_token:
        parts.append(f"<NextContinuationToken>{next_token}</NextContinuationToken>")
    if not token and start_after:
        parts.append(f"<StartAfter>{text(start_after)}</StartAfter>")
    parts.append("</ListBucketResult>")
    body = "".join(parts).encode()
    headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
    return "200 OK", headers, body


def _has_subresource(query: str) -> bool:
    """A query naming anything but presigned-URL authentication (`?acl`, `?tagging`, ...)."""
    names = (part.partition("=")[0] for part in query.split("&") if part)
    return any(not name.startswith("X-Amz-") for name in names)


def _live_object(bucket_name: str, key_name: str) -> Any:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import FakeDeleteMarker, s3_backends

    bucket = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].buckets.get(bucket_name)
    if bucket is None or not key_name:
        return None
    obj = bucket.keys.get(key_name)
    return None if obj is None or isinstance(obj, FakeDeleteMarker) else obj


def _byte_range(header: str, size: int) -> tuple[int, int] | None:
    """`bytes=a-b` or `bytes=a-` within the object, clipped as S3 clips it; else None (moto)."""
    unit, _, spec = header.partition("=")
    first_text, dash, last_text = spec.partition("-")
    if unit != "bytes" or not dash or not first_text.isdigit():
        return None
    first = int(first_text)
    if last_text and not last_text.isdigit():
        return None
    last = min(int(last_text), size - 1) if last_text else size - 1
    if first >= size or last < first:
        return None
    return first, last


def _index_listing() -> None:
    """Make moto's prefix listing use a sorted key index instead of a full bucket scan."""
    from moto.s3.models import FakeDeleteMarker, S3Backend

    generation = [0]
    cache: dict[str, tuple[int, list[str]]] = {}
    lock = threading.Lock()
    original_put = S3Backend.put_object
    original_delete = S3Backend.delete_object

    def put_object(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            generation[0] += 1
        return original_put(self, *args, **kwargs)

    def delete_object(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            generation[0] += 1
        return original_delete(self, *args, **kwargs)

    def names(bucket: Any) -> list[str]:
        with lock:
            known = cache.get(bucket.name)
            if known is None or known[0] != generation[0]:
                known = (generation[0], sorted(bucket.keys.keys()))
                cache[bucket.name] = known
            return known[1]

    def matching(bucket: Any, prefix: str) -> Iterator[tuple[str, Any]]:
        keys = names(bucket)
        for i in range(bisect.bisect_left(keys, prefix), len(keys)):
            name = keys[i]
            if not name.startswith(prefix):
                break
            yield name, bucket.keys[name]

    def list_objects(
        self: Any,
        bucket: Any,
        prefix: str | None,
        delimiter: str | None,
        marker: str | None,
        max_keys: int | None,
    ) -> Any:
        # moto's own list_objects, with the scan limited to the keys under `prefix`.
        prefix = prefix or ""
        key_results = set()
        folder_results = set()
        for key_name, key in matching(bucket, prefix):
            rest = key_name[len(prefix) :]
            if delimiter and delimiter in rest:
                folder_results.add(f"{prefix}{rest.split(delimiter)[0]}{delimiter}")
            else:
                key_results.add(key)
        keys = sorted(
            (k for k in key_results if not isinstance(k, FakeDeleteMarker)), key=lambda k: k.name
        )
        folders = sorted(folder_results)
        if marker:
            limit = self._pagination_tokens.get(marker) or marker
            keys = self._get_results_from_token(keys, limit)
        if max_keys is not None:
            keys, truncated, next_marker = self._truncate_result(keys, max_keys)
        else:
            truncated, next_marker = False, None
        return keys, folders, truncated, next_marker

    original_list_v2 = S3Backend.list_objects_v2

    def list_objects_v2(
        self: Any,
        bucket: Any,
        prefix: str | None,
        delimiter: str | None,
        continuation_token: str | None,
        start_after: str | None,
        max_keys: int,
    ) -> Any:
        # Without a delimiter (sweeps and skip-scans): one page read from the index, as moto
        # would answer it. With one (a folder's listing), moto's own, over `list_objects` above.
        after = self._pagination_tokens.get(continuation_token) if continuation_token else None
        if delimiter or (continuation_token and after is None):
            args = (bucket, prefix, delimiter, continuation_token, start_after, max_keys)
            return original_list_v2(self, *args)
        after = after or start_after
        prefix = prefix or ""
        keys = names(bucket)
        first = bisect.bisect_left(keys, prefix)
        if after:
            first = max(first, bisect.bisect_right(keys, after))
        page: list[Any] = []
        for i in range(first, len(keys)):
            if not keys[i].startswith(prefix) or len(page) > max_keys:
                break
            key = bucket.keys[keys[i]]
            if not isinstance(key, FakeDeleteMarker):
                page.append(key)
        return self._truncate_result(page, max_keys)

    S3Backend.list_objects_v2 = list_objects_v2  # type: ignore[method-assign]
    S3Backend.put_object = put_object  # type: ignore[method-assign]
    S3Backend.delete_object = delete_object  # type: ignore[method-assign]
    S3Backend.list_objects = list_objects  # type: ignore[method-assign]


def load_world(world_root: Path) -> int:
    """Put every object of the world into moto's backend in this process; the object count."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    from bench.world import World

    world = World(world_root)
    templates = world.template_bytes()
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(BUCKET, REGION)
    count = 0
    for obj in world.objects():
        backend.put_object(BUCKET, obj.key, templates[obj.template])
        count += 1
    return count


def keep_alive_handler(fast_path: ObjectFastPath, latency: LatencyMiddleware) -> type[Any]:
    """moto's werkzeug request handler, answering fast-path requests on a kept-alive connection."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class KeepAliveHandler(MotoRequestHandler):
        protocol_version = "HTTP/1.1"

        def run_wsgi(self) -> None:
            environ = self.make_environ()
            answer = None
            if not self.headers.get("Content-Length") and "chunked" not in self.headers.get(
                "Transfer-Encoding", ""
            ):
                answer = fast_path.answer(environ)
            if answer is None:
                super().run_wsgi()  # the whole stack again; werkzeug closes the connection
                return
            latency.delay(environ)
            status, headers, body = answer
            code, _, reason = status.partition(" ")
            self.send_response(int(code), reason)
            for name, value in headers:
                self.send_header(name, value)
            # Headers and body in one write: two small writes on one connection wait for
            # the client's delayed ACK (Nagle), ~40 ms per answer.
            self._headers_buffer.append(b"\r\n")
            self.wfile.write(b"".join([*self._headers_buffer, body]))
            self._headers_buffer = []

        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    return KeepAliveHandler


def serve(world_root: Path, port: int, latency: float) -> None:
    from moto.moto_server.werkzeug_app import create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    _index_listing()
    started = time.monotonic()
    count = load_world(world_root)
    fast_path = ObjectFastPath(create_backend_app("s3"))
    app = LatencyMiddleware(fast_path, latency)
    handler = keep_alive_handler(fast_path, app)
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=handler)
    loaded = time.monotonic() - started
    print(f"ready {server.port} {count} objects loaded in {loaded:.1f} s", flush=True)
    server.serve_forever()


@contextmanager
def running_server(
    world_root: Path, latency: float, log: Path, python: str = sys.executable
) -> Iterator[str]:
    """The server in a child process for the block; yields its endpoint URL."""
    import subprocess

    from bulkimg.demo.run import free_port

    port = free_port()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        args = ["-m", "bench.s3server", "--world", str(world_root), "--port", str(port)]
        args += ["--latency-ms", f"{latency * 1000:g}"]
        repo = Path(__file__).resolve().parents[1]
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])
        )
        proc = subprocess.Popen(  # noqa: S603
            [python, *args], stdout=subprocess.PIPE, stderr=out, cwd=repo, env=env
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().decode()
            if not line.startswith("ready"):
                raise RuntimeError(f"S3 server did not start (see {log}): {line!r}")
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args(argv)
    serve(args.world, args.port, args.latency_ms / 1000)


if __name__ == "__main__":
    main()
