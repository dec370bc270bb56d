"""The shop lives in its SQLite file: a restart with the same file loses nothing, and an
operation that was running when the shop stopped ends FAILED with its partial data."""

from __future__ import annotations

from pathlib import Path

from bulkimg.shopify.documents import load_document
from tests.helpers.fixtures import MakeSandbox
from tests.helpers.sandbox import SandboxSession, product_line, wait_for

PRODUCT_SET = load_document("product_set")
READ = """query($h: String!) { productByIdentifier(identifier: {handle: $h}) {
  id title options { name values } variants(first: 5) { nodes { id sku } }
  media(first: 5) { nodes { id alt } } } }"""


def test_restart_keeps_products_operations_results_and_staged_files(
    tmp_path: Path, make_sandbox: MakeSandbox
) -> None:
    state = tmp_path / "kept.sqlite"
    first: SandboxSession = make_sandbox(state)
    files = [{"originalSource": "http://127.0.0.1:9/a.jpg", "alt": "a", "contentType": "IMAGE"}]
    first.data(PRODUCT_SET, product_line("kept", ("1", "2"), files))
    run = first.run_bulk_mutation(PRODUCT_SET, [product_line("from-bulk")])
    operation = first.wait_operation(run["bulkOperation"]["id"])
    staged = first.stage(b"{}\n")
    product = first.data(READ, {"h": "kept"})
    first.shop.close()

    second: SandboxSession = make_sandbox(state)
    assert second.data(READ, {"h": "kept"}) == product
    kept = second.operation(operation["id"])
    assert {k: v for k, v in kept.items() if k != "url"} == {
        k: v for k, v in operation.items() if k != "url"
    }
    old_url = operation["url"].replace(first.url, second.url)  # same signature, new port
    assert len(second.results(old_url)) == 1
    variables = {"mutation": PRODUCT_SET, "stagedUploadPath": staged}
    again = second.data(load_document("bulk_operation_run_mutation"), variables)
    assert again["bulkOperationRunMutation"]["userErrors"] == []


def test_operation_running_at_shutdown_ends_failed_with_partial_data(
    tmp_path: Path, make_sandbox: MakeSandbox
) -> None:
    state = tmp_path / "interrupted.sqlite"
    first: SandboxSession = make_sandbox(state, bulk_line_delay=0.1)
    lines = [product_line(f"slow-{n}") for n in range(30)]
    operation_id = first.run_bulk_mutation(PRODUCT_SET, lines)["bulkOperation"]["id"]
    wait_for(lambda: first.operation(operation_id), lambda op: int(op["objectCount"]) >= 2)
    first.shop.close()

    second: SandboxSession = make_sandbox(state)
    operation = second.operation(operation_id)
    assert (operation["status"], operation["errorCode"]) == ("FAILED", "INTERNAL_SERVER_ERROR")
    partial = second.results(operation["partialDataUrl"])
    assert 2 <= len(partial) < 30
    handles = {r["data"]["productSet"]["product"]["handle"] for r in partial}
    found = second.data("{ products(first: 50) { nodes { handle } } }")["products"]["nodes"]
    assert handles == {node["handle"] for node in found}
