"""Fault injection: HTTP errors and slow answers on each route, bulk operations that fail part
way or skip lines, media downloads that fail; in-process and through POST /sandbox/faults."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from bulkimg.sandbox import FaultRule
from bulkimg.sandbox.faults import FaultRuleError
from bulkimg.shopify.documents import load_document
from tests.helpers.fixtures import ImageUrl
from tests.helpers.sandbox import SANDBOX_TOKEN, SandboxSession, product_line, wait_for

PRODUCT_SET = load_document("product_set")
SHOP = load_document("shop")


def _post(session: SandboxSession, query: str, **kw: Any) -> httpx.Response:
    headers = {"X-Shopify-Access-Token": SANDBOX_TOKEN}
    return session.http.post(
        session.shop.graphql_path, json={"query": query}, headers=headers, **kw
    )


def test_graphql_5xx_for_the_first_n_requests(sandbox: SandboxSession) -> None:
    sandbox.shop.faults.add(FaultRule("graphql", status=503, count=2))
    assert [_post(sandbox, SHOP).status_code for _ in range(3)] == [503, 503, 200]


def test_429_carries_retry_after(sandbox: SandboxSession) -> None:
    sandbox.shop.faults.add(FaultRule("graphql", status=429, retry_after=3, count=1))
    response = _post(sandbox, SHOP)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"


def test_rules_can_match_one_graphql_operation(sandbox: SandboxSession) -> None:
    sandbox.shop.faults.add(FaultRule("graphql", status=500, operation_name="Shop"))
    assert _post(sandbox, SHOP).status_code == 500
    assert _post(sandbox, "query Other { shop { name } }").status_code == 200


def test_slow_responses_delay_or_time_out(sandbox: SandboxSession) -> None:
    sandbox.shop.faults.add(FaultRule("graphql", delay=0.6, count=2))
    started = time.monotonic()
    assert _post(sandbox, SHOP).status_code == 200
    assert time.monotonic() - started >= 0.6
    with pytest.raises(httpx.ReadTimeout):
        _post(sandbox, SHOP, timeout=0.2)


def test_requests_are_counted_on_arrival_before_their_delay(sandbox: SandboxSession) -> None:
    import threading

    sandbox.shop.faults.add(FaultRule("graphql", delay=2.0, count=1, operation_name="Shop"))
    assert sandbox.shop.faults.seen("graphql") == 0
    held = threading.Thread(target=_post, args=(sandbox, SHOP))
    held.start()
    wait_for(lambda: sandbox.shop.faults.seen("graphql", "Shop"), lambda n: n == 1, timeout=1.5)
    assert held.is_alive()  # still held by the delay: a test can act now
    held.join()
    _post(sandbox, "query Other { shop { name } }")
    assert sandbox.shop.faults.seen("graphql") == 2
    assert sandbox.shop.faults.seen("graphql", "Other") == 1
    assert sandbox.shop.faults.seen("staged_upload") == 0


def test_probability_applies_a_rule_to_a_seeded_share_of_requests(sandbox: SandboxSession) -> None:
    sandbox.shop.faults.add(FaultRule("graphql", status=502, probability=0.5))
    codes = [_post(sandbox, SHOP).status_code for _ in range(20)]
    assert set(codes) == {200, 502}


def test_staged_upload_and_result_download_faults(sandbox: SandboxSession) -> None:
    sandbox.shop.faults.add(FaultRule("staged_upload", status=500, count=1))
    with pytest.raises(AssertionError, match=r"500|SandboxFault"):
        sandbox.stage(b"{}\n")
    run = sandbox.run_bulk_mutation(PRODUCT_SET, [product_line("dl")])
    operation = sandbox.wait_operation(run["bulkOperation"]["id"])
    sandbox.shop.faults.add(FaultRule("result_download", status=503, count=1))
    assert sandbox.http.get(operation["url"]).status_code == 503
    assert len(sandbox.results(operation["url"])) == 1


def test_bulk_mutation_that_fails_part_way_keeps_partial_data(sandbox: SandboxSession) -> None:
    sandbox.shop.faults.add(FaultRule("bulk_mutation", fail_after_lines=3, count=1))
    lines = [product_line(f"part-{n}") for n in range(8)]
    operation = sandbox.wait_operation(
        sandbox.run_bulk_mutation(PRODUCT_SET, lines)["bulkOperation"]["id"]
    )
    assert (operation["status"], operation["errorCode"]) == ("FAILED", "INTERNAL_SERVER_ERROR")
    assert operation["url"] is None and operation["completedAt"] is None
    partial = sandbox.results(operation["partialDataUrl"])
    assert len(partial) == 3 and operation["objectCount"] == "3"


def test_bulk_operation_failing_before_any_line_has_no_partial_data(
    sandbox: SandboxSession,
) -> None:
    sandbox.data(PRODUCT_SET, product_line("one"))
    sandbox.shop.faults.add(FaultRule("bulk_query", fail_after_lines=0))
    run = sandbox.data(
        load_document("bulk_operation_run_query"), {"query": load_document("export_products")}
    )
    operation = sandbox.wait_operation(run["bulkOperationRunQuery"]["bulkOperation"]["id"])
    assert operation["status"] == "FAILED" and operation["partialDataUrl"] is None


def test_lines_that_never_run_have_no_result_line(sandbox: SandboxSession) -> None:
    sandbox.shop.faults.add(FaultRule("bulk_mutation", skip_lines=(1, 4)))
    lines = [product_line(f"skip-{n}") for n in range(6)]
    operation = sandbox.wait_operation(
        sandbox.run_bulk_mutation(PRODUCT_SET, lines)["bulkOperation"]["id"]
    )
    assert operation["status"] == "COMPLETED"
    numbers = sorted(r["__lineNumber"] for r in sandbox.results(operation["url"]))
    assert numbers == [0, 2, 3, 5]


def test_media_download_fault_fails_the_media(sandbox: SandboxSession, image_url: ImageUrl) -> None:
    sandbox.shop.faults.add(FaultRule("media_fetch", status=503, url_contains="flaky"))
    files = [
        {"originalSource": image_url("flaky.jpg"), "alt": "flaky", "contentType": "IMAGE"},
        {"originalSource": image_url("fine.jpg"), "alt": "fine", "contentType": "IMAGE"},
    ]
    sandbox.data(PRODUCT_SET, product_line("faulty", files=files))
    query = """query { productByIdentifier(identifier: {handle: "faulty"}) {
      media(first: 5) { nodes { alt status mediaErrors { code } } } } }"""
    media = wait_for(
        lambda: sandbox.data(query)["productByIdentifier"]["media"]["nodes"],
        lambda ms: all(m["status"] in ("READY", "FAILED") for m in ms),
    )
    assert {m["alt"]: m["status"] for m in media} == {"flaky": "FAILED", "fine": "READY"}
    assert media[0]["mediaErrors"] == [{"code": "IMAGE_DOWNLOAD_FAILURE"}]


def test_user_error_rule_refuses_a_mutation_without_running_it(sandbox: SandboxSession) -> None:
    sandbox.shop.faults.add(
        FaultRule(
            "graphql",
            operation_name="BulkOperationRunMutation",
            user_error="A bulk operation is already in progress",
            user_error_code="OPERATION_IN_PROGRESS",
            count=1,
        )
    )
    path = sandbox.stage(b"{}\n")
    variables = {"mutation": PRODUCT_SET, "stagedUploadPath": path}
    run = load_document("bulk_operation_run_mutation")
    refused = sandbox.data(run, variables)["bulkOperationRunMutation"]
    assert refused["bulkOperation"] is None
    assert refused["userErrors"] == [
        {"code": "OPERATION_IN_PROGRESS", "field": None,
         "message": "A bulk operation is already in progress"}
    ]  # fmt: skip
    assert sandbox.shop.faults.seen("bulk_mutation") == 0  # nothing started
    assert sandbox.data(run, variables)["bulkOperationRunMutation"]["bulkOperation"]["id"]
    with pytest.raises(FaultRuleError, match="needs operation_name"):
        FaultRule("graphql", user_error="no")


def test_fault_endpoint_needs_the_token_and_adds_lists_and_clears_rules(
    sandbox: SandboxSession,
) -> None:
    headers = {"X-Shopify-Access-Token": SANDBOX_TOKEN}
    rule = {"route": "graphql", "status": 502, "count": 1}
    assert sandbox.http.post("/sandbox/faults", json=rule).status_code == 401
    bad = sandbox.http.post("/sandbox/faults", json={"route": "nowhere"}, headers=headers)
    assert bad.status_code == 400 and "unknown route" in bad.text
    added = sandbox.http.post("/sandbox/faults", json=[rule], headers=headers)
    assert added.status_code == 200 and added.json()["rules"][0]["status"] == 502
    sandbox.http.post("/sandbox/faults", json={"route": "graphql", "status": 500}, headers=headers)
    assert _post(sandbox, SHOP).status_code == 502
    assert sandbox.http.delete("/sandbox/faults", headers=headers).json() == {"rules": []}
    assert _post(sandbox, SHOP).status_code == 200


def test_nonsense_rules_are_refused() -> None:
    with pytest.raises(FaultRuleError, match="unknown route"):
        FaultRule("nowhere")  # type: ignore[arg-type]
    with pytest.raises(FaultRuleError, match="not status"):
        FaultRule("bulk_mutation", status=500)
    with pytest.raises(FaultRuleError, match="bulk routes only"):
        FaultRule("graphql", fail_after_lines=1)
    with pytest.raises(FaultRuleError, match="unknown fault rule fields"):
        FaultRule.from_json({"route": "graphql", "colour": 1})
