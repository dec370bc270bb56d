"""Bulk mutations: shuffled lines with __lineNumber, per-line failures, limits, cancel, expiry."""

from __future__ import annotations

import time
from typing import Any

from bulkimg.sandbox import FaultRule
from bulkimg.shopify.documents import load_document
from tests.helpers.files import jsonl_bytes
from tests.helpers.fixtures import MakeSandbox
from tests.helpers.sandbox import SandboxSession, product_line, wait_for

PRODUCT_SET = load_document("product_set")
RUN_MUTATION = load_document("bulk_operation_run_mutation")
RUN_QUERY = load_document("bulk_operation_run_query")
CANCEL = load_document("bulk_operation_cancel")


def _lines(count: int, prefix: str = "p") -> list[dict[str, Any]]:
    return [product_line(f"{prefix}{n}", (f"{prefix}{n}-sku",)) for n in range(count)]


def _started(run: Any) -> str:
    assert run["userErrors"] == [], run["userErrors"]
    assert run["bulkOperation"]["status"] == "CREATED"
    operation_id: str = run["bulkOperation"]["id"]
    return operation_id


def test_lines_run_shuffled_and_each_result_carries_its_line_number(
    sandbox: SandboxSession,
) -> None:
    operation_id = _started(sandbox.run_bulk_mutation(PRODUCT_SET, _lines(12)))
    operation = sandbox.wait_operation(operation_id)
    assert operation["status"] == "COMPLETED"
    assert operation["errorCode"] is None and operation["completedAt"]
    assert (operation["objectCount"], operation["rootObjectCount"]) == ("12", "12")
    response = sandbox.http.get(operation["url"])
    assert operation["fileSize"] == str(len(response.content))
    results = sandbox.results(operation["url"])
    numbers = [r["__lineNumber"] for r in results]
    assert sorted(numbers) == list(range(12))
    assert numbers != sorted(numbers), "lines must not run in file order"
    for result in results:
        product = result["data"]["productSet"]["product"]
        assert product["handle"] == f"p{result['__lineNumber']}"
        assert result["data"]["productSet"]["userErrors"] == []


def test_line_order_is_seeded_and_reproducible(sandbox: SandboxSession) -> None:
    orders = []
    for prefix in ("a", "b"):
        operation = sandbox.wait_operation(
            _started(sandbox.run_bulk_mutation(PRODUCT_SET, _lines(8, prefix)))
        )
        orders.append([r["__lineNumber"] for r in sandbox.results(operation["url"])])
    assert orders[0] == orders[1]


def test_operation_completes_although_some_lines_fail(sandbox: SandboxSession) -> None:
    ok = product_line("fine")
    user_error = {"identifier": {"id": "gid://shopify/Product/1"}, "input": {"title": "x"}}
    bad_variables = product_line("bad") | {"input": {"colour": "gold"}}
    lines = [
        jsonl_bytes([ok]),
        jsonl_bytes([user_error]),
        b'{"identifier": {"handle": "broken"\n',
        jsonl_bytes([bad_variables]),
    ]
    operation = sandbox.wait_operation(_started(sandbox.run_bulk_mutation(PRODUCT_SET, lines)))
    assert operation["status"] == "COMPLETED"
    by_line = {r["__lineNumber"]: r for r in sandbox.results(operation["url"])}
    assert sorted(by_line) == [0, 1, 2, 3]
    assert by_line[0]["data"]["productSet"]["userErrors"] == []
    (error,) = by_line[1]["data"]["productSet"]["userErrors"]
    assert (
        error["code"] == "PRODUCT_DOES_NOT_EXIST"
        and by_line[1]["data"]["productSet"]["product"] is None
    )
    assert "data" not in by_line[2] and "JSON" in by_line[2]["errors"][0]["message"]
    assert "colour" in by_line[3]["errors"][0]["message"]


def test_empty_file_completes_with_no_result_url(sandbox: SandboxSession) -> None:
    operation = sandbox.wait_operation(_started(sandbox.run_bulk_mutation(PRODUCT_SET, b"")))
    assert operation["status"] == "COMPLETED"
    assert (operation["url"], operation["objectCount"], operation["fileSize"]) == (None, "0", None)


def test_invalid_mutations_are_refused_with_invalid_mutation(sandbox: SandboxSession) -> None:
    path = sandbox.stage(jsonl_bytes(_lines(1)))
    two_connections = PRODUCT_SET.replace(
        "      handle\n", "      handle\n      variants(first: 1) { nodes { id } }\n", 1
    )
    documents = [
        "mutation { productSet(input: {}) { product { id } }",  # syntax
        "query { shop { name } }",
        'mutation { productSet(input: {title: "a"}) { userErrors { code } } '
        "stagedUploadsCreate(input: []) { userErrors { field } } }",
        two_connections,
        RUN_QUERY,
        "mutation P($input: ProductSetInput!) { productSet(input: $input) { colour } }",
    ]
    for document in documents:
        run = sandbox.data(RUN_MUTATION, {"mutation": document, "stagedUploadPath": path})
        payload = run["bulkOperationRunMutation"]
        assert payload["bulkOperation"] is None, document
        assert [e["code"] for e in payload["userErrors"]] == ["INVALID_MUTATION"], document
        assert payload["userErrors"][0]["field"] == ["mutation"]


def test_client_identifier_must_have_10_to_255_characters(sandbox: SandboxSession) -> None:
    path = sandbox.stage(jsonl_bytes(_lines(1)))
    variables = {"mutation": PRODUCT_SET, "stagedUploadPath": path, "clientIdentifier": "short"}
    payload = sandbox.data(RUN_MUTATION, variables)["bulkOperationRunMutation"]
    assert payload["userErrors"][0]["field"] == ["clientIdentifier"]
    variables["clientIdentifier"] = "nightly-2026-10-01"
    assert sandbox.data(RUN_MUTATION, variables)["bulkOperationRunMutation"]["userErrors"] == []


def test_concurrency_limit_counts_queries_and_mutations_and_answers_limit_reached(
    make_sandbox: MakeSandbox,
) -> None:
    session: SandboxSession = make_sandbox(bulk_concurrency_limit=2, bulk_line_delay=0.2)
    running = [_started(session.run_bulk_mutation(PRODUCT_SET, _lines(30, p))) for p in "ab"]
    third = session.run_bulk_mutation(PRODUCT_SET, _lines(1, "c"))
    assert third["bulkOperation"] is None
    assert [e["code"] for e in third["userErrors"]] == ["LIMIT_REACHED"]
    query = session.data(RUN_QUERY, {"query": load_document("export_products")})
    assert [e["code"] for e in query["bulkOperationRunQuery"]["userErrors"]] == ["LIMIT_REACHED"]
    session.data(CANCEL, {"id": running[0]})
    assert session.wait_operation(running[0])["status"] == "CANCELED"
    assert _started(session.run_bulk_mutation(PRODUCT_SET, _lines(1, "d")))
    session.data(CANCEL, {"id": running[1]})


def test_cancel_ends_the_operation_canceled_without_result_urls(make_sandbox: MakeSandbox) -> None:
    session: SandboxSession = make_sandbox(bulk_line_delay=0.1)
    operation_id = _started(session.run_bulk_mutation(PRODUCT_SET, _lines(40)))
    wait_for(lambda: session.operation(operation_id), lambda op: op["objectCount"] != "0")
    canceled = session.data(CANCEL, {"id": operation_id})["bulkOperationCancel"]
    assert canceled["userErrors"] == []
    assert canceled["bulkOperation"]["status"] in ("CANCELING", "CANCELED")
    operation = session.wait_operation(operation_id)
    assert operation["status"] == "CANCELED"
    assert int(operation["objectCount"]) < 40
    assert (operation["url"], operation["partialDataUrl"], operation["completedAt"]) == (
        None,
        None,
        None,
    )
    again = session.data(CANCEL, {"id": operation_id})["bulkOperationCancel"]
    assert "canceled" in again["userErrors"][0]["message"]


def test_staged_file_changed_after_start_fails_the_operation(make_sandbox: MakeSandbox) -> None:
    session: SandboxSession = make_sandbox(bulk_line_delay=0.1)
    item = {"resource": "BULK_MUTATION_VARIABLES", "filename": "a.jsonl"}
    item |= {"mimeType": "text/jsonl", "httpMethod": "POST"}
    created = session.data(load_document("staged_uploads_create"), {"input": [item]})
    target = created["stagedUploadsCreate"]["stagedTargets"][0]
    fields = {p["name"]: p["value"] for p in target["parameters"]}

    def upload(content: bytes) -> None:
        files = {"file": ("a.jsonl", content, "text/jsonl")}
        assert session.http.post(target["url"], data=fields, files=files).status_code == 201

    upload(jsonl_bytes(_lines(30)))
    variables = {"mutation": PRODUCT_SET, "stagedUploadPath": fields["key"]}
    run = session.data(RUN_MUTATION, variables)["bulkOperationRunMutation"]
    operation_id = _started(run)
    wait_for(lambda: session.operation(operation_id), lambda op: int(op["objectCount"]) >= 2)
    upload(jsonl_bytes(_lines(30, "changed")))
    operation = session.wait_operation(operation_id)
    assert (operation["status"], operation["errorCode"]) == ("FAILED", "INTERNAL_SERVER_ERROR")
    assert operation["url"] is None
    partial = session.results(operation["partialDataUrl"])
    assert 2 <= len(partial) < 30
    assert all(r["data"]["productSet"]["product"]["handle"].startswith("p") for r in partial)


def test_result_url_expires_a_lifetime_after_completion_and_is_not_renewed(
    make_sandbox: MakeSandbox,
) -> None:
    session: SandboxSession = make_sandbox(result_url_lifetime=2)
    operation = session.wait_operation(_started(session.run_bulk_mutation(PRODUCT_SET, _lines(2))))
    url = operation["url"]
    assert operation["status"] == "COMPLETED"
    assert len(session.results(url)) == 2
    tampered = url.replace("Signature=", "Signature=0")
    assert "SignatureDoesNotMatch" in session.http.get(tampered).text
    # A later query signs the same expiry (completedAt + lifetime), not a fresh one.
    time.sleep(1.1)
    again = session.operation(operation["id"])
    assert again["status"] == "COMPLETED" and again["url"] == url
    expired = wait_for(lambda: session.http.get(url), lambda r: r.status_code != 200, timeout=5)
    assert expired.status_code == 403 and "ExpiredToken" in expired.text
    after = session.operation(operation["id"])
    assert (after["status"], after["url"], after["partialDataUrl"]) == ("EXPIRED", None, None)
    assert after["completedAt"] == operation["completedAt"]
    document = load_document("bulk_operations")
    nodes = session.data(document, {"query": "status:expired"})["bulkOperations"]["nodes"]
    assert [n["id"] for n in nodes] == [operation["id"]]


def test_partial_data_url_expires_a_lifetime_after_the_failure(make_sandbox: MakeSandbox) -> None:
    session: SandboxSession = make_sandbox(result_url_lifetime=1.5)
    session.shop.faults.add(FaultRule("bulk_mutation", fail_after_lines=1, count=1))
    run = session.run_bulk_mutation(PRODUCT_SET, _lines(3))
    operation = session.wait_operation(_started(run))
    assert operation["status"] == "FAILED" and operation["partialDataUrl"]
    assert len(session.results(operation["partialDataUrl"])) == 1
    time.sleep(1.6)
    after = session.operation(operation["id"])
    assert (after["status"], after["partialDataUrl"]) == ("FAILED", None)


def test_bulk_operations_filters_by_status_and_operation_type(sandbox: SandboxSession) -> None:
    mutation_id = _started(sandbox.run_bulk_mutation(PRODUCT_SET, _lines(1)))
    sandbox.wait_operation(mutation_id)
    query_run = sandbox.data(RUN_QUERY, {"query": load_document("export_products")})
    query_id = query_run["bulkOperationRunQuery"]["bulkOperation"]["id"]
    sandbox.wait_operation(query_id)
    document = load_document("bulk_operations")

    def ids(query: str) -> list[str]:
        nodes = sandbox.data(document, {"query": query})["bulkOperations"]["nodes"]
        return [node["id"] for node in nodes]

    assert ids("status:completed") == [query_id, mutation_id]  # newest first
    assert ids("operation_type:mutation") == [mutation_id]
    assert ids("status:running operation_type:query") == []
    (error,) = sandbox.gql(document, {"query": "type:mutation"})["errors"]
    assert "operation_type" in error["message"]
    current = "query($t: BulkOperationType) { currentBulkOperation(type: $t) { id } }"
    assert sandbox.data(current, {"t": "MUTATION"})["currentBulkOperation"]["id"] == mutation_id
    assert sandbox.data(current)["currentBulkOperation"]["id"] == query_id


def test_status_goes_created_running_completed_with_running_counts(
    make_sandbox: MakeSandbox,
) -> None:
    session: SandboxSession = make_sandbox(bulk_line_delay=0.1)
    operation_id = _started(session.run_bulk_mutation(PRODUCT_SET, _lines(10)))
    running = wait_for(
        lambda: session.operation(operation_id),
        lambda op: op["status"] == "RUNNING" and op["objectCount"] != "0",
        timeout=5,
    )
    assert running["url"] is None and running["completedAt"] is None
    assert session.wait_operation(operation_id)["objectCount"] == "10"
