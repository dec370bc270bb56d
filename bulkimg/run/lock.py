"""One writer per output folder and per shop: a lock file that names its holder.

Every command that writes (build, submit, retry, run, reconcile, preview, demo) holds two locks
for its whole life: `<output dir>/bulkimg.lock` (one writer per output folder) and
`<state file>.lock` (one writer per shop). The kernel's `flock` is the authority: it is released
when the holder exits, however it ends, so a holder gone from this host never blocks anyone.
The file's content names the holder (pid, host, command, start time) for the refusal message;
it is emptied on a clean exit, so content left behind means its holder died.

Content left by a process of another host is not taken over: on a file system where `flock` does
not reach other hosts (NFS mounted `nolock`), that process may still run. `bulkimg unlock`
clears it once the operator has checked that host (docs/operations.md, "A stale lock").

Nested use in one process (`run` builds and submits; the CLI and the library both lock) counts
depth and never deadlocks.
"""

from __future__ import annotations

import fcntl
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import orjson

from bulkimg.config import Settings
from bulkimg.errors import ConfigError
from bulkimg.formats.run import now_iso

LOCK_FILE = "bulkimg.lock"


class RunLockedError(ConfigError):
    """Another bulkimg process holds the lock of this output folder or shop (exit 2)."""


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds (or held) a lock."""

    pid: int
    host: str
    command: str
    started_at: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (bulkimg {self.command}, since {self.started_at})"

    def dump(self) -> bytes:
        return orjson.dumps(
            {"pid": self.pid, "host": self.host, "command": self.command,
             "started_at": self.started_at}
        ) + b"\n"  # fmt: skip


@dataclass(slots=True)
class LockGrant:
    """What taking the locks found: holders that died without releasing them (taken over)."""

    stale: list[LockHolder] = field(default_factory=list)


def this_host() -> str:
    return socket.gethostname()


def lock_paths(settings: Settings) -> list[Path]:
    """The output folder's lock, then the shop's (next to its state file)."""
    return folder_lock_paths(settings.output_dir, settings.state_file)


def folder_lock_paths(output_dir: Path, state_file: Path) -> list[Path]:
    return [output_dir / LOCK_FILE, state_file.with_name(state_file.name + ".lock")]


@dataclass(slots=True)
class _Held:
    handle: BinaryIO
    depth: int = 1


_held: dict[Path, _Held] = {}
_guard = threading.Lock()


@contextmanager
def writer_lock(settings: Settings, command: str) -> Iterator[LockGrant]:
    """Hold this output folder's and this shop's locks for the block, or raise RunLockedError
    naming the holder. Re-entrant within a process."""
    with hold_locks(lock_paths(settings), command) as grant:
        yield grant


@contextmanager
def hold_locks(paths: list[Path], command: str) -> Iterator[LockGrant]:
    """Hold the lock files `paths` (in order) for the block; writer_lock's locks are two."""
    grant = LockGrant()
    with ExitStack() as stack:
        for path in dict.fromkeys(_key(p) for p in paths):
            stale = stack.enter_context(_hold(path, command))
            if stale is not None:
                grant.stale.append(stale)
        yield grant


def _key(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.parent.resolve() / path.name


@contextmanager
def _hold(path: Path, command: str) -> Iterator[LockHolder | None]:
    with _guard:
        held = _held.get(path)
        if held is not None:
            held.depth += 1
    if held is not None:
        try:
            yield None
        finally:
            with _guard:
                held.depth -= 1
        return
    handle = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+b")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(handle)
            who = holder.describe() if holder else "another bulkimg process"
            raise RunLockedError(f"{path} is held by {who}: wait for it to finish") from None
        left = _read(handle)
        if left is not None and left.host != this_host():
            raise RunLockedError(
                f"{path} was left by {left.describe()}: if bulkimg no longer runs there,"
                " clear it with `bulkimg unlock` (docs/operations.md, A stale lock)"
            )
        _write(handle, LockHolder(os.getpid(), this_host(), command, now_iso()).dump())
        with _guard:
            _held[path] = _Held(handle)
        try:
            yield left
        finally:
            with _guard:
                del _held[path]
            _write(handle, b"")
    finally:
        handle.close()  # closing the descriptor releases the flock


def _read(handle: BinaryIO) -> LockHolder | None:
    handle.seek(0)
    raw = handle.read()
    if not raw.strip():
        return None
    try:
        data = orjson.loads(raw)
        return LockHolder(
            int(data["pid"]), str(data["host"]), str(data["command"]), str(data["started_at"])
        )
    except (ValueError, KeyError, TypeError):
        # Earlier versions wrote "<pid> <time>" and never emptied it: this host's, like them.
        pid, _, started = raw.decode("utf-8", "replace").strip().partition(" ")
        number = int(pid) if pid.isdigit() else 0
        return LockHolder(number, this_host(), "run", started or "an unknown time")


def _write(handle: BinaryIO, content: bytes) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(content)
    handle.flush()
    os.fsync(handle.fileno())


def unlock(settings: Settings) -> list[tuple[Path, LockHolder]]:
    """Clear locks left by processes that are gone (of any host); the holders cleared.

    A lock a live process holds (one `flock` reaches) is refused with its holder, never cleared.
    """
    cleared: list[tuple[Path, LockHolder]] = []
    for path in dict.fromkeys(_key(p) for p in lock_paths(settings)):
        if not path.is_file():
            continue
        with path.open("r+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(handle)
                who = holder.describe() if holder else "another bulkimg process"
                raise RunLockedError(f"{path} is held by {who}: it is not stale") from None
            left = _read(handle)
            if left is not None:
                _write(handle, b"")
                cleared.append((path, left))
    return cleared
