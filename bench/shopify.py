"""Shopify API calls: a bulkimg submit counted against the sandbox shop; the baseline's by design.

bulkimg: the build's productset files go through `Submission` (phase 1 bulk mutation, product
export until the media are READY, phase 2 bulk mutation) against an in-process sandbox served on
loopback. Every HTTP request the client sends is counted by kind: a GraphQL operation by name, a
staged upload, a result download. Poll intervals are bulkimg's defaults.

A night with no change: after that submit, `bulkimg run` (`run_nightly`: build against the state
file the submit recorded, then submit --wait) runs again on the same catalog, S3 and shop, and
its requests to the shop are counted the same way.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from bench.measure import run_build
from bench.s3server import ACCESS_KEY, BUCKET, REGION, SECRET_KEY

if TYPE_CHECKING:
    from bulkimg.config import Settings
    from bulkimg.sandbox import SandboxShop
    from bulkimg.shopify.client import ShopifyClient

SANDBOX_TOKEN = "shpat_bench_sandbox"  # noqa: S105 - the local sandbox's token, not a secret
_OPERATION = re.compile(r"\b(?:query|mutation)\s+(\w+)")


class CallCounter:
    """An httpx request hook: counts requests as `graphql:<Operation>`, `staged_upload`, …"""

    def __init__(self, graphql_path: str) -> None:
        self.graphql_path = graphql_path
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> None:
        kind = self.kind(request)
        with self._lock:
            self.calls[kind] += 1

    def kind(self, request: httpx.Request) -> str:
        if request.url.path.endswith("/graphql.json"):
            try:
                query = str(orjson.loads(request.content).get("query", ""))
            except (orjson.JSONDecodeError, httpx.RequestNotRead):
                return "graphql:?"
            match = _OPERATION.search(query)
            return f"graphql:{match.group(1) if match else '?'}"
        if request.method == "POST":
            return "staged_upload"
        return "result_download"

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@dataclass(frozen=True, slots=True)
class NightCalls:
    """A second nightly run with no change: what it sent to the shop."""

    calls: dict[str, int]
    total: int
    groups_unchanged: int
    groups_sent: int
    bulk_operations: int
    wall_seconds: float
    exit_code: int


@dataclass(frozen=True, slots=True)
class SubmitCalls:
    groups: int
    lines: int
    calls: dict[str, int]
    total: int
    polls: int
    wall_seconds: float
    exit_code: int
    warm_night: NightCalls


def measure_submit(
    endpoint: str,
    catalog: Path,
    workdir: Path,
    warm_cache: Path | None,
    poll_interval: float | None = None,
) -> SubmitCalls:
    """Build `catalog` (its headers already cached when `warm_cache` is given), then submit it
    with `--wait` to a fresh sandbox shop, then run a night with no change; every request to the
    shop counted."""
    from bulkimg.config import Settings, load_settings
    from bulkimg.run.ledger import productset_files_of_build
    from bulkimg.run.nightly import run_nightly
    from bulkimg.run.submit import Submission
    from bulkimg.sandbox import SandboxConfig, SandboxShop, serve

    cache = workdir / "cache"
    if warm_cache is not None and not cache.exists():
        shutil.copytree(warm_cache, cache)
    built = run_build(endpoint, catalog, workdir, cache)
    shop_config = SandboxConfig(
        access_token=SANDBOX_TOKEN, media_processing_delay=0.0, media_workers=8, shuffle_seed=1
    )
    with SandboxShop(workdir / "shop.sqlite", shop_config) as shop, serve(shop) as url:
        overrides: dict[str, Any] = {
            "output_dir": workdir / "output",
            "logs_dir": workdir / "logs",
            "cache_dir": cache,
            "shopify_shop": url,
            "shopify_access_token": SANDBOX_TOKEN,
        }
        # Every file the submit writes stays in `workdir`, whatever settings exist.
        paths = {"state_file": workdir / "output" / "state.sqlite"}
        overrides |= {k: v for k, v in paths.items() if k in Settings.model_fields}
        if poll_interval is not None:  # CI's small run; the benchmark keeps bulkimg's default
            overrides |= {"poll_interval": poll_interval, "poll_max_interval": poll_interval * 5}
        settings = load_settings(overrides, env_file=None)
        with counted_client(settings, shop) as (client, counter):
            started = time.monotonic()
            submission = Submission(settings, client)
            state = submission.start(productset_files_of_build(settings.output_dir))
            outcome = submission.run(state, wait=True)
            wall = time.monotonic() - started
        night_settings = load_settings(overrides | build_settings(endpoint, catalog), env_file=None)
        with counted_client(night_settings, shop) as (client, night_counter):
            started = time.monotonic()
            night = run_nightly(night_settings, client)
            night_wall = time.monotonic() - started
    report = night.report
    warm = NightCalls(
        calls=dict(sorted(night_counter.calls.items())),
        total=night_counter.total,
        groups_unchanged=report.groups_unchanged,
        groups_sent=report.groups_sent,
        bulk_operations=report.bulk_operations,
        wall_seconds=round(night_wall, 3),
        exit_code=night.exit_code,
    )
    return SubmitCalls(
        groups=int(_int(built.report.get("groups"))),
        lines=outcome.counts.get("lines_submitted", 0),
        calls=dict(sorted(counter.calls.items())),
        total=counter.total,
        polls=counter.calls.get("graphql:BulkOperation", 0),
        wall_seconds=round(wall, 3),
        exit_code=outcome.exit_code,
        warm_night=warm,
    )


@contextmanager
def counted_client(
    settings: Settings, shop: SandboxShop
) -> Iterator[tuple[ShopifyClient, CallCounter]]:
    """A Shopify client for the sandbox whose every HTTP request is counted."""
    from bulkimg.shopify.client import client_from_settings

    counter = CallCounter(shop.graphql_path)
    http = httpx.Client(
        timeout=settings.shopify_timeout, follow_redirects=True, event_hooks={"request": [counter]}
    )
    with client_from_settings(settings, http=http) as client:
        yield client, counter


def build_settings(endpoint: str, catalog: Path) -> dict[str, Any]:
    """The settings `bench.measure.build_env` gives a build process, for an in-process build."""
    return {
        "catalog": f"sqlite:///{catalog}",
        "aws_s3_bucket": BUCKET,
        "aws_endpoint_url_s3": endpoint,
        "aws_access_key_id": ACCESS_KEY,
        "aws_secret_access_key": SECRET_KEY,
        "aws_region": REGION,
    }


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float | str) else 0


def baseline_calls(result: dict[str, Any]) -> int:
    """The baseline's calls per run: one productSet per group, one productVariantUpdate per
    variant with an image (recorded by bench.baseline as its code builds them)."""
    return sum(int(n) for n in result["shopify_calls"].values())
