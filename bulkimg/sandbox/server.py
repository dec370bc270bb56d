"""Serve a sandbox shop over real HTTP on loopback, in a background thread."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

from werkzeug.serving import WSGIRequestHandler, make_server

from bulkimg.redact import redact_url

if TYPE_CHECKING:
    from bulkimg.sandbox.shop import SandboxShop

log = logging.getLogger("bulkimg.sandbox.http")


class _QuietHandler(WSGIRequestHandler):
    """Logs requests at debug level, with signatures and tokens in URLs hidden."""

    def log(self, type: str, message: str, *args: object) -> None:
        log.debug("%s %s", self.address_string(), redact_url(message % args))


@contextmanager
def serve(shop: SandboxShop, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``shop`` on ``host:port`` (0: a free port) for the block; yields the base URL."""
    server = make_server(host, port, shop.wsgi_app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="sandbox-http",
        daemon=True,
    )
    thread.start()
    try:
        yield f"http://{host}:{server.port}"
    finally:
        server.shutdown()
        thread.join()


def wait_for_shutdown_signal() -> None:
    """Block until SIGTERM or SIGINT (Ctrl-C); the previous handlers are restored after."""
    received = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not received.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
