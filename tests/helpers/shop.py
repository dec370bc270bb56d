"""A submit and a retry as the library runs them, what the last submit sent to the sandbox shop,
and the sandbox shop seeded from the sample catalog (the existing-catalog scenario)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from bulkimg.config import Settings
from bulkimg.demo.samples import SampleData
from bulkimg.models import CatalogGroup
from bulkimg.run.ledger import productset_files_of_build
from bulkimg.run.retry import run_retry
from bulkimg.run.submit import Submission, SubmitOutcome
from bulkimg.s3.client import make_s3_client
from bulkimg.sandbox import SandboxShop
from bulkimg.sandbox.seed import SeedOptions, SeedReport
from bulkimg.sandbox.snapshot import ShopSnapshot
from bulkimg.shopify.client import client_from_settings
from tests.helpers.env import SHOP_TOKEN
from tests.helpers.sandbox import wait_for


def submit(settings: Settings, retries: Counter[str] | None = None) -> SubmitOutcome:
    with client_from_settings(settings) as client:
        submission = Submission(settings, client)
        state = submission.resume_or_start(productset_files_of_build(settings.output_dir))
        outcome = submission.run(state, wait=True)
        if retries is not None:
            retries.update(client.retries)
        return outcome


def retry(settings: Settings) -> SubmitOutcome:
    failures = settings.output_dir / "failures.jsonl"
    with client_from_settings(settings) as client:
        _, outcome = run_retry(settings, client, failures, make_s3_client(settings))
    assert outcome is not None
    return outcome


def graphql(url: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = httpx.post(
        f"{url}/admin/api/2026-10/graphql.json",
        json={"query": query, "variables": variables or {}},
        headers={"X-Shopify-Access-Token": SHOP_TOKEN},
    )
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


PRODUCT = """query($handle: String!) { productByIdentifier(identifier: {handle: $handle}) {
  id media(first: 50) { nodes { id alt status } }
  variants(first: 50) { nodes { sku media(first: 1) { nodes { id } } } } } }"""


def mutation_operations(url: str) -> list[dict[str, Any]]:
    data = graphql(
        url,
        '{ bulkOperations(first: 50, query: "operation_type:mutation") { nodes { id status } } }',
    )
    return data["bulkOperations"]["nodes"]  # type: ignore[no-any-return]


def sent_lines(output_dir: Path) -> list[dict[str, Any]]:
    """The productSet lines the last submit sent (resolved against the shop), wherever the run's
    files are: in `output_dir`, or archived under runs/ by a nightly run."""
    from bulkimg.formats.run import RunStore

    store = RunStore(output_dir)
    run_id = store.load().run_id if store.exists() else ""
    folder = next(iter(sorted(output_dir.glob(f"runs/*-{run_id}"))), output_dir)
    return [
        orjson.loads(raw)
        for path in sorted(folder.glob(f"productset-resolved-{run_id}-*.jsonl"))
        for raw in path.read_bytes().splitlines()
        if raw.strip()
    ]


def reorders_done(shop: SandboxShop) -> None:
    """Wait until the sandbox applied every productReorderMedia job (they run asynchronously)."""
    store = shop.services.store
    wait_for(lambda: store.due_jobs(time.time() + 3600), lambda jobs: not jobs)


def sent_groups(output_dir: Path) -> list[str]:
    """The groups the last submit sent lines for (from its resolution)."""
    from bulkimg.formats.resolution import read_resolution
    from bulkimg.formats.run import RunStore

    state = RunStore(output_dir).load()
    path = Path(state.resolution_file or "")
    if not path.is_file():  # archived with its run
        path = next(iter(output_dir.glob(f"runs/*-{state.run_id}/{path.name}")), path)
    return [g.group_id for g in read_resolution(path) if g.lines]


SEED_NUMBER = 4
SEED_OPTIONS = SeedOptions(renamed=0.15, stale_images=0.1, partial_images=0.2, lifestyle=0.4,
                           hand_set_variant_images=0.2)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SeededShop:
    """A sandbox shop served on loopback, seeded from the sample catalog and bucket."""

    shop: SandboxShop
    url: str
    report: SeedReport
    seeded: ShopSnapshot
    """The shop right after seeding."""


def sample_groups(sample: SampleData) -> list[CatalogGroup]:
    """The catalog groups of the sample, read as bulkimg reads its CSV."""
    import tempfile

    from bulkimg.catalog import ColumnMap, CSVSource, read_catalog

    with tempfile.TemporaryDirectory() as folder:
        path = sample.write_csv(Path(folder) / "nav_items.csv")
        return read_catalog(CSVSource(path, ColumnMap())).groups
