"""Shared by several test modules: moved here from tests/run/test_submit.py."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx

from bulkimg.config import Settings
from bulkimg.run.ledger import productset_files_of_build
from bulkimg.run.retry import run_retry
from bulkimg.run.submit import Submission, SubmitOutcome
from bulkimg.s3.client import make_s3_client
from bulkimg.shopify.client import client_from_settings
from tests.conftest import SHOP_TOKEN


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
