"""Scripted TCP servers on loopback for the GET clients' corner cases: a server that answers each
connection with a script (resets, trickled bytes, half answers)."""

from __future__ import annotations

import socket
import struct
import threading
import time
from typing import Any


class ScriptedServer:
    """Serves each accepted connection with `script(conn, n)` (n: 0 for the first) on a thread."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.connections = 0
        self.done = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self.done.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            n, self.connections = self.connections, self.connections + 1
            threading.Thread(target=self._run, args=(conn, n), daemon=True).start()

    def _run(self, conn: socket.socket, n: int) -> None:
        try:
            self.script(conn, n)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.done.set()
        with socket.create_connection(("127.0.0.1", self.port), 5):  # wakes accept()
            pass
        self._thread.join(5)
        self._listener.close()


def read_request(conn: socket.socket) -> bytes:
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = conn.recv(1)
        if not byte:
            return head
        head += byte
    return head


def reset(conn: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a peer dropping the connection does."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def trickle(
    conn: socket.socket,
    data: bytes,
    stop: threading.Event,
    *,
    every: float = 0.05,
    stop_after: float | None = None,
) -> None:
    """Send `data` a byte `every` seconds, until `stop` is set or `stop_after` seconds passed."""
    end = None if stop_after is None else time.monotonic() + stop_after
    for i in range(len(data)):
        if stop.wait(every) or (end is not None and time.monotonic() > end):
            return
        conn.sendall(data[i : i + 1])
