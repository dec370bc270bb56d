"""The benchmark keeps working (a tiny run; its numbers are not asserted) and its helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.utils import parse_timestamp

from bulkimg.s3client import fast_timestamp

REPO = Path(__file__).resolve().parents[1]
REQUIRED_KEYS = {
    "cold_speedup",
    "warm_speedup",
    "bulkimg_s3_requests",
    "floor_s3_requests",
    "baseline_s3_requests",
    "shopify_calls_bulkimg",
    "shopify_calls_baseline",
    "shopify_calls_bulkimg_warm",
    "peak_rss_mb_20k",
    "peak_rss_mb_100k",
    "scale",
    "latency_ms",
}


def test_small_benchmark_run_writes_every_required_key(tmp_path: Path) -> None:
    out = tmp_path / "results"
    args = [sys.executable, "-m", "bench", "--scale", "0.001", "--latency-ms", "0"]
    args += ["--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    args += ["--submit-groups", "5", "--poll-interval", "0.1", "--baseline-warm", "skip"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results: dict[str, Any] = orjson.loads((out / "latest.json").read_bytes())
    assert not REQUIRED_KEYS - results.keys()
    assert results["shopify_calls_bulkimg_warm"] is None  # filled by the nightly state store
    assert "| bulkimg |" in (out / "latest.md").read_text()
    assert not (REPO / "output" / "state.sqlite").exists()  # nothing written into the repo


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-02T03:04:05.000Z",
        "2026-01-02T03:04:05Z",
        "2026-01-02T03:04:05+02:00",
        "Wed, 25 Nov 2026 17:06:17 GMT",
        "2026-01-02T03:04:05",
        "1700000000",
        1700000000,
    ],
)
def test_fast_timestamps_equal_botocores(value: Any) -> None:
    assert fast_timestamp(value) == parse_timestamp(value)


class _CountingPool(ThreadPoolExecutor):
    submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_header_reads_keep_a_bounded_number_of_requests_in_flight() -> None:
    from bulkimg.s3index import _as_completed_bounded

    got: dict[int, int] = {}
    most = 0
    with _CountingPool(4) as pool:
        results = _as_completed_bounded(pool, lambda i: i * 2, iter(range(1000)), 8)
        for collected, (item, doubled) in enumerate(results):
            got[item] = doubled
            most = max(most, pool.submitted - collected - 1)  # submitted and still pending
    assert got == {i: i * 2 for i in range(1000)}
    assert most <= 8


def test_a_failed_header_read_is_raised() -> None:
    from bulkimg.s3index import _as_completed_bounded

    def probe(item: Any) -> Any:
        if item == 3:
            raise RuntimeError("boom")
        return item

    with ThreadPoolExecutor(2) as pool, pytest.raises(RuntimeError, match="boom"):
        list(_as_completed_bounded(pool, probe, range(10), 4))


def test_floor_counts_one_get_per_candidate_and_the_cheaper_listing(tmp_path: Path) -> None:
    from bench.world import ensure_world, floor_for

    world = ensure_world(tmp_path, 0.001, 7, say=lambda _: None)
    skus = world.catalog_image_skus(world.catalog)
    floor = floor_for(world, skus)
    candidates = {
        (o.image_sku, o.key.rsplit("/", 1)[1].split("-")[1])
        for o in world.objects()
        if o.kind in ("image", "too_small") and o.image_sku in skus
    }
    assert floor.candidate_gets == len(candidates)
    assert 0 < floor.list_pages <= floor.folders_needed
    assert floor_for(world, skus, changed_keys=set()).candidate_gets == 0
