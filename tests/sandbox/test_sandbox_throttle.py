"""Cost-based throttling of ordinary calls: THROTTLED with extensions.cost, recovery after the
bucket refills, the single-query cost limit; bulk operation lines are not throttled."""

from __future__ import annotations

import time

from bulkimg.sandbox.throttle import LeakyBucket
from bulkimg.shopify.documents import load_document
from tests.helpers.fixtures import MakeSandbox
from tests.helpers.sandbox import SandboxSession, product_line

TWELVE_POINTS = "{ products(first: 10) { nodes { id } } }"  # 2 + 10 x 1


def test_calls_are_throttled_with_cost_details_and_recover_after_waiting(
    make_sandbox: MakeSandbox,
) -> None:
    session: SandboxSession = make_sandbox(throttle_bucket_size=50, throttle_restore_rate=5)
    costs = [session.gql(TWELVE_POINTS)["extensions"]["cost"] for _ in range(4)]
    assert [c["requestedQueryCost"] for c in costs] == [12] * 4
    assert costs[0]["actualQueryCost"] == 12
    assert costs[0]["throttleStatus"]["maximumAvailable"] == 50
    throttled = session.gql(TWELVE_POINTS)
    assert "data" not in throttled
    (error,) = throttled["errors"]
    assert error["extensions"]["code"] == "THROTTLED"
    cost = throttled["extensions"]["cost"]
    assert (cost["requestedQueryCost"], cost["actualQueryCost"]) == (12, None)
    status = cost["throttleStatus"]
    assert status["restoreRate"] == 5 and status["currentlyAvailable"] < 12
    time.sleep((12 - status["currentlyAvailable"]) / 5 + 0.1)
    assert "data" in session.gql(TWELVE_POINTS)


def test_a_query_over_the_single_query_limit_is_refused(sandbox: SandboxSession) -> None:
    query = "{ products(first: 250) { nodes { variants(first: 250) { nodes { id } } } } }"
    body = sandbox.gql(query)
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert body["extensions"]["cost"]["requestedQueryCost"] > 1000
    assert "data" in sandbox.gql(load_document("product_by_handle"), {"handle": "x"})


def test_bulk_lines_are_not_throttled(make_sandbox: MakeSandbox) -> None:
    session: SandboxSession = make_sandbox(throttle_bucket_size=60, throttle_restore_rate=20)
    ordinary = session.gql(load_document("product_set"), product_line("solo"))
    assert ordinary["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    lines = [product_line(f"bulk-{n}") for n in range(8)]
    run = session.run_bulk_mutation(load_document("product_set"), lines)
    query = load_document("bulk_operation")
    deadline = time.monotonic() + 20
    while True:
        body = session.gql(query, {"id": run["bulkOperation"]["id"]})
        operation = (body.get("data") or {}).get("bulkOperation") or {}
        if operation.get("status") == "COMPLETED" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert operation["status"] == "COMPLETED" and operation["objectCount"] == "8"


def test_leaky_bucket_refills_at_its_restore_rate() -> None:
    bucket = LeakyBucket(size=10, restore_rate=1000)
    assert bucket.take(10) and not bucket.take(5)
    time.sleep(0.02)
    assert bucket.take(5)
    assert bucket.status().currently_available <= 10
