"""`bulkimg/parallel.py`: every item's result once, at most `workers` calls at a time."""

from __future__ import annotations

import threading
import time

import pytest

from bulkimg.parallel import as_done


def test_every_item_comes_back_once_with_at_most_workers_calls_at_a_time() -> None:
    running = most = 0
    lock = threading.Lock()

    def double(item: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.001)
        with lock:
            running -= 1
        return item * 2

    got = dict(as_done(double, list(range(300)), 4))
    assert got == {i: i * 2 for i in range(300)}
    assert 1 < most <= 4


def test_a_failed_call_is_raised_and_the_workers_stop() -> None:
    calls: list[int] = []

    def probe(item: int) -> int:
        calls.append(item)
        if item == 3:
            raise RuntimeError("boom")
        time.sleep(0.01)
        return item

    with pytest.raises(RuntimeError, match="boom"):
        list(as_done(probe, list(range(1000)), 2))
    assert len(calls) < 20  # stopped soon after, not run to the end
    assert not [t for t in threading.enumerate() if t.name.startswith("worker-")]


def test_leaving_the_loop_early_stops_the_workers() -> None:
    results = as_done(lambda i: i, list(range(10_000)), 3)
    for _ in zip(range(5), results, strict=False):
        pass
    results.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("worker-")]


def test_no_items_start_no_thread() -> None:
    assert list(as_done(lambda i: i, [], 8)) == []
