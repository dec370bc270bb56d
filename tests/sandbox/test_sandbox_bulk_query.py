"""bulkOperationRunQuery: a flat JSONL of products, media and variants, children carrying
__parentId, ungrouped (children need not follow their parent)."""

from __future__ import annotations

from typing import Any

from bulkimg.shopify.documents import load_document
from tests.helpers.sandbox import SandboxSession, product_line

RUN_QUERY = load_document("bulk_operation_run_query")
EXPORT = load_document("export_products")


def _catalog(session: SandboxSession, products: int = 4) -> None:
    for n in range(products):
        files = [
            {"originalSource": f"http://127.0.0.1:9/p{n}-{k}.jpg", "contentType": "IMAGE"}
            for k in range(2)
        ]
        line = product_line(f"p{n}", (f"{n}-a", f"{n}-b"), files)
        line["input"]["variants"][0]["file"] = {"originalSource": files[1]["originalSource"]}
        payload = session.data(load_document("product_set"), line)["productSet"]
        assert payload["userErrors"] == []


def _export(session: SandboxSession, group_objects: bool | None = None) -> tuple[Any, list[Any]]:
    query = RUN_QUERY
    if group_objects is not None:
        grouped = f"(query: $query, groupObjects: {str(group_objects).lower()})"
        query = query.replace("(query: $query)", grouped)
    run = session.data(query, {"query": EXPORT})["bulkOperationRunQuery"]
    assert run["userErrors"] == []
    operation = session.wait_operation(run["bulkOperation"]["id"])
    assert operation["status"] == "COMPLETED" and operation["type"] == "QUERY"
    return operation, session.results(operation["url"])


def test_export_is_flat_with_parent_ids_and_counts(sandbox: SandboxSession) -> None:
    _catalog(sandbox)
    operation, lines = _export(sandbox)
    products = {line["id"]: line for line in lines if "__parentId" not in line}
    assert sorted(p["handle"] for p in products.values()) == ["p0", "p1", "p2", "p3"]
    assert all("media" not in p and "variants" not in p for p in products.values())
    variants = {line["id"]: line for line in lines if "/ProductVariant/" in line["id"]}
    product_media = [line for line in lines if line.get("__parentId") in products and "alt" in line]
    variant_media = [line for line in lines if line.get("__parentId") in variants]
    assert len(variants) == 8 and len(product_media) == 8 and len(variant_media) == 4
    assert all(v["__parentId"] in products for v in variants.values())
    assert all(set(m) == {"id", "__parentId"} for m in variant_media)
    assert operation["rootObjectCount"] == "4"
    assert operation["objectCount"] == str(len(lines)) == "24"


def test_export_is_ungrouped_unless_grouping_is_asked(sandbox: SandboxSession) -> None:
    _catalog(sandbox)

    def child_before_parent(lines: list[Any]) -> bool:
        seen: set[str] = set()
        for line in lines:
            if line.get("__parentId") and line["__parentId"] not in seen:
                return True
            seen.add(line["id"])
        return False

    assert child_before_parent(_export(sandbox)[1])
    assert not child_before_parent(_export(sandbox, group_objects=True)[1])


def test_invalid_bulk_queries_are_refused(sandbox: SandboxSession) -> None:
    for query in (
        "{ shop { name } }",
        '{ node(id: "gid://shopify/Product/1") { id } }',
        EXPORT.replace("title", "colour"),
    ):
        payload = sandbox.data(RUN_QUERY, {"query": query})["bulkOperationRunQuery"]
        assert payload["bulkOperation"] is None
        assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID", ["query"])]


def test_empty_shop_export_completes_without_a_url(sandbox: SandboxSession) -> None:
    run = sandbox.data(RUN_QUERY, {"query": EXPORT})["bulkOperationRunQuery"]
    operation = sandbox.wait_operation(run["bulkOperation"]["id"])
    assert (operation["status"], operation["url"], operation["objectCount"]) == (
        "COMPLETED",
        None,
        "0",
    )
