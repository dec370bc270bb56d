"""Run a function over many items on worker threads, results handed back as they finish.

The header reads make tens of thousands of short calls (a round trip each, little CPU).
A `ThreadPoolExecutor` costs a Future, a work item and a lock hand-off per call, and gating
submissions on the caller (`wait(FIRST_COMPLETED)`) lets a caller that is busy for a moment
(a cache write) starve every worker. Here the workers pull the next item themselves and put
each result on one queue; the caller only takes results off it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar, cast

T = TypeVar("T")
R = TypeVar("R")


class _Feed:
    """Indexes 0..count-1, handed out one at a time to whichever worker asks (thread-safe)."""

    def __init__(self, count: int) -> None:
        self._count = count
        self._next = 0
        self._lock = threading.Lock()
        self.stopped = False

    def take(self) -> int | None:
        with self._lock:
            if self.stopped or self._next >= self._count:
                return None
            self._next += 1
            return self._next - 1


def as_done(
    fn: Callable[[T], R], items: Sequence[T], workers: int, name: str = "worker"
) -> Iterator[tuple[T, R]]:
    """(item, fn(item)) for every item, in the order they finish, `workers` calls at a time.

    An exception raised by `fn` is raised here (the other workers finish the call they are in
    and stop). Leaving the loop early stops the workers the same way.
    """
    if not items:
        return
    feed = _Feed(len(items))
    done: queue.SimpleQueue[tuple[int, R | None, BaseException | None]] = queue.SimpleQueue()

    def work() -> None:
        while (index := feed.take()) is not None:
            try:
                result = fn(items[index])
            except BaseException as exc:  # handed to the caller, which raises it
                done.put((index, None, exc))
                return
            done.put((index, result, None))

    threads = [
        threading.Thread(target=work, name=f"{name}-{n}", daemon=True)
        for n in range(min(workers, len(items)))
    ]
    for thread in threads:
        thread.start()
    try:
        for _ in range(len(items)):
            index, result, error = done.get()
            if error is not None:
                raise error
            yield items[index], cast(R, result)
    finally:
        feed.stopped = True
        for thread in threads:
            thread.join()
