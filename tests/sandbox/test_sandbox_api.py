"""The sandbox's Admin GraphQL endpoint: auth, Shopify's error shapes, every document we send."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bulkimg.sandbox import SandboxConfig, SandboxShop
from bulkimg.shopify.documents import ADMIN_API_VERSION, document_names, load_document
from tests.helpers.fixtures import ImageUrl, MakeSandbox
from tests.helpers.graphql import SAMPLE_PRODUCT_SET_VARIABLES
from tests.helpers.sandbox import SANDBOX_TOKEN, SandboxSession, wait_for

GRAPHQL_DIR = Path(__file__).resolve().parents[2] / "graphql"
SUBSET_SDL = GRAPHQL_DIR / f"schema.admin-{ADMIN_API_VERSION}.graphql"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"


def _post(session: SandboxSession, headers: dict[str, str], **kw: Any) -> httpx.Response:
    return session.http.post(session.shop.graphql_path, headers=headers, **kw)


def test_missing_or_wrong_access_token_gets_401_with_shopifys_message(
    sandbox: SandboxSession,
) -> None:
    body = {"query": "{ shop { name } }"}
    for headers in ({}, {"X-Shopify-Access-Token": "shpat_wrong"}):
        response = _post(sandbox, headers, json=body)
        assert response.status_code == 401
        assert response.json() == {"errors": INVALID_TOKEN}


def test_unknown_api_version_is_404(sandbox: SandboxSession) -> None:
    response = sandbox.http.post(
        "/admin/api/2019-01/graphql.json",
        json={"query": "{ shop { name } }"},
        headers={"X-Shopify-Access-Token": SANDBOX_TOKEN},
    )
    assert response.status_code == 404


def test_answers_carry_the_api_version_header_and_cost(sandbox: SandboxSession) -> None:
    response = _post(
        sandbox, {"X-Shopify-Access-Token": SANDBOX_TOKEN}, json={"query": load_document("shop")}
    )
    assert response.headers["X-Shopify-API-Version"] == ADMIN_API_VERSION
    body = response.json()
    assert body["data"]["shop"]["myshopifyDomain"].endswith(".myshopify.com")
    assert body["extensions"]["cost"]["requestedQueryCost"] == 1


def test_unknown_field_is_a_validation_error_in_shopifys_shape(sandbox: SandboxSession) -> None:
    body = sandbox.gql("query Shop {\n  shop { name colour }\n}")
    assert "data" not in body
    (error,) = body["errors"]
    assert "colour" in error["message"]
    assert error["locations"] == [{"line": 2, "column": 15}]
    assert error["extensions"]["code"] == "undefinedField"


def test_syntax_error_is_reported_with_a_location(sandbox: SandboxSession) -> None:
    (error,) = sandbox.gql("query { shop { name }")["errors"]
    assert error["locations"] and error["extensions"]["code"] == "parseError"


def test_bad_variable_is_rejected_naming_the_field(sandbox: SandboxSession) -> None:
    variables = copy.deepcopy(SAMPLE_PRODUCT_SET_VARIABLES)
    variables["input"]["colour"] = "gold"
    body = sandbox.gql(load_document("product_set"), variables)
    assert "data" not in body
    (error,) = body["errors"]
    assert "colour" in error["message"]
    assert error["extensions"]["code"] == "INVALID_VARIABLE"
    assert sandbox.data("{ products(first: 5) { nodes { id } } }")["products"]["nodes"] == []


def test_request_without_a_query_is_400(sandbox: SandboxSession) -> None:
    response = _post(sandbox, {"X-Shopify-Access-Token": SANDBOX_TOKEN}, content=b"not json")
    assert response.status_code == 400


def test_application_graphql_body_is_accepted(sandbox: SandboxSession) -> None:
    headers = {"X-Shopify-Access-Token": SANDBOX_TOKEN, "Content-Type": "application/graphql"}
    response = _post(sandbox, headers, content=b"{ shop { name } }")
    assert response.json()["data"]["shop"]["name"]


def test_connections_need_first_or_last_as_on_shopify(sandbox: SandboxSession) -> None:
    (error,) = sandbox.gql("{ products { nodes { id } } }")["errors"]
    assert error["message"] == "you must provide one of first or last"


def test_fields_the_sandbox_does_not_model_fail_loudly(sandbox: SandboxSession) -> None:
    body = sandbox.gql("{ shop { name email } }")
    assert body["errors"][0]["extensions"]["code"] == "NOT_EMULATED"
    assert "Shop.email" in body["errors"][0]["message"]


def test_node_resolves_every_served_type_and_rejects_malformed_ids(
    sandbox: SandboxSession,
) -> None:
    created = sandbox.data(load_document("product_set"), _product("node-test"))
    product = created["productSet"]["product"]
    query = "query($id: ID!) { node(id: $id) { __typename id } }"
    assert sandbox.data(query, {"id": product["id"]})["node"]["__typename"] == "Product"
    media_id = product["media"]["nodes"][0]["id"]
    assert sandbox.data(query, {"id": media_id})["node"]["__typename"] == "MediaImage"
    missing = {"id": "gid://shopify/Product/1"}
    assert sandbox.data(query, missing)["node"] is None
    (error,) = sandbox.gql(query, {"id": "not-a-gid"})["errors"]
    assert error["message"] == "Invalid global id 'not-a-gid'"


def _product(handle: str) -> dict[str, Any]:
    variables = copy.deepcopy(SAMPLE_PRODUCT_SET_VARIABLES)
    variables["identifier"] = {"handle": handle}
    variables["input"]["handle"] = handle
    variables["input"]["files"][0]["originalSource"] = "http://127.0.0.1:9/a.jpg"
    return variables


# --- every document bulkimg sends ---------------------------------------------------------


def _run_mutation_document(session: SandboxSession, document: str) -> dict[str, Any]:
    path = session.stage(b'{"identifier": {"handle": "doc-run"}, "input": {"title": "x"}}\n')
    variables = {"mutation": load_document("product_set"), "stagedUploadPath": path}
    return session.data(document, variables | {"clientIdentifier": "documents-test"})


def _operation_id(session: SandboxSession) -> str:
    run = session.data(load_document("bulk_operation_run_query"), {"query": _export()})
    operation_id: str = run["bulkOperationRunQuery"]["bulkOperation"]["id"]
    session.wait_operation(operation_id)
    return operation_id


def _export() -> str:
    return load_document("export_products")


STAGED = {
    "resource": "BULK_MUTATION_VARIABLES",
    "filename": "a.jsonl",
    "mimeType": "text/jsonl",
    "httpMethod": "POST",
}


@dataclass(frozen=True)
class Made:
    """A product the documents run against: its id, its variant's, and its two READY images."""

    product: str
    variant: str
    media: tuple[str, str]


Runner = Callable[[SandboxSession, str, Made], Any]
RUNNERS: dict[str, Runner] = {
    "shop": lambda s, d, m: s.data(d),
    "product_set": lambda s, d, m: s.data(d, _product("doc-product-2")),
    "product_by_handle": lambda s, d, m: s.data(d, {"handle": "doc-product"}),
    "product_media": lambda s, d, m: s.data(d, {"handle": "doc-product"}),
    "staged_uploads_create": lambda s, d, m: s.data(d, {"input": [STAGED]}),
    "bulk_operation_run_mutation": lambda s, d, m: _run_mutation_document(s, d),
    "bulk_operation_run_query": lambda s, d, m: s.data(d, {"query": _export()}),
    "export_products": lambda s, d, m: s.wait_operation(
        s.data(load_document("bulk_operation_run_query"), {"query": d})["bulkOperationRunQuery"][
            "bulkOperation"
        ]["id"]
    ),
    "bulk_operation": lambda s, d, m: s.data(d, {"id": _operation_id(s)}),
    "bulk_operations": lambda s, d, m: s.data(d, {"query": "status:completed"}),
    "bulk_operation_cancel": lambda s, d, m: s.data(d, {"id": _running_operation_id(s)}),
    "variant_append_media": lambda s, d, m: s.data(
        d,
        {
            "productId": m.product,
            "variantMedia": [{"variantId": m.variant, "mediaIds": [m.media[1]]}],
        },
    ),
    "variant_detach_media": lambda s, d, m: _detach(s, d, m),
    "product_update_media": lambda s, d, m: s.data(d, {"product": {"id": m.product}, "media": []}),
    "file_update": lambda s, d, m: s.data(d, {"files": [{"id": m.media[0], "alt": "x"}]}),
    "file_delete": lambda s, d, m: s.data(d, {"fileIds": [m.media[1]]}),
    "product_reorder_media": lambda s, d, m: s.data(
        d, {"id": m.product, "moves": [{"id": m.media[1], "newPosition": "0"}]}
    ),
}


def _detach(session: SandboxSession, document: str, made: Made) -> Any:
    """The variant shows an image first (attached), then it is detached."""
    pairs = {"productId": made.product}
    pairs["variantMedia"] = [{"variantId": made.variant, "mediaIds": [made.media[0]]}]  # type: ignore[assignment]
    session.data(load_document("variant_append_media"), pairs)
    return session.data(document, pairs)


def _running_operation_id(session: SandboxSession) -> str:
    """A bulk mutation still running (its lines are slow), to cancel."""
    run = _run_mutation_document(session, load_document("bulk_operation_run_mutation"))
    operation_id: str = run["bulkOperationRunMutation"]["bulkOperation"]["id"]
    return operation_id


def _made(session: SandboxSession, image_url: ImageUrl) -> Made:
    variables = _product("doc-product")
    first = variables["input"]["files"][0]
    second = first | {"originalSource": image_url("b.jpg"), "filename": "827749-2a-1.jpg"}
    variables["input"]["files"] = [first | {"originalSource": image_url("a.jpg")}, second]
    product = session.data(load_document("product_set"), variables)["productSet"]["product"]

    def media() -> list[dict[str, Any]]:
        found = session.data(load_document("product_media"), {"handle": "doc-product"})
        return found["productByIdentifier"]["media"]["nodes"]  # type: ignore[no-any-return]

    ready = wait_for(media, lambda nodes: all(n["status"] == "READY" for n in nodes))
    query = "query($id: ID!) { product(id: $id) { variants(first: 1) { nodes { id } } } }"
    variant = session.data(query, {"id": product["id"]})["product"]["variants"]["nodes"][0]["id"]
    return Made(product["id"], variant, (ready[0]["id"], ready[1]["id"]))


def _user_errors(data: Any) -> list[Any]:
    """Every userErrors (or mediaUserErrors) entry of a mutation's payloads."""
    if not isinstance(data, dict):
        return []
    found: list[Any] = []
    for payload in data.values():
        if isinstance(payload, dict):
            found += payload.get("userErrors") or []
            found += payload.get("mediaUserErrors") or []
    return found


def test_every_shipped_document_has_a_runner_here() -> None:
    assert sorted(RUNNERS) == document_names(), "add a runner for the new document"


@pytest.mark.parametrize("name", sorted(RUNNERS))
def test_every_shipped_document_executes_against_the_sandbox_without_an_error(
    make_sandbox: MakeSandbox, image_url: ImageUrl, name: str
) -> None:
    # Lines of a bulk mutation take a while, so the one to cancel is still running.
    sandbox: SandboxSession = make_sandbox(bulk_line_delay=1.0 if name.endswith("cancel") else 0)
    made = _made(sandbox, image_url)
    result = RUNNERS[name](sandbox, load_document(name), made)
    assert result is not None
    assert _user_errors(result) == []  # the document did its work: not refused, not a no-op
    if name == "export_products":
        assert result["status"] == "COMPLETED"


def test_documents_also_execute_against_the_subset_schema(
    make_sandbox: MakeSandbox, image_url: ImageUrl
) -> None:
    session: SandboxSession = make_sandbox(schema_path=SUBSET_SDL)
    assert session.shop.schema.get_type("AbandonedCheckout") is None  # really the subset
    names = ("shop", "product_set", "product_by_handle", "bulk_operations", "product_update_media")
    others = ("file_update", "variant_detach_media", "product_reorder_media", "file_delete")
    made = _made(session, image_url)
    for name in (*names, *others):
        assert _user_errors(RUNNERS[name](session, load_document(name), made)) == []
    assert session.wait_operation(_operation_id(session))["status"] == "COMPLETED"


def test_in_process_wsgi_transport_serves_the_same_api(tmp_path: Path) -> None:
    config = SandboxConfig(access_token=SANDBOX_TOKEN)
    with SandboxShop(tmp_path / "shop.sqlite", config) as shop:
        transport = httpx.WSGITransport(app=shop.wsgi_app)
        with httpx.Client(transport=transport, base_url="http://sandbox.test") as client:
            response = client.post(
                shop.graphql_path,
                json={"query": load_document("shop")},
                headers={"X-Shopify-Access-Token": SANDBOX_TOKEN},
            )
    assert response.json()["data"]["shop"]["name"] == "bulkimg sandbox"
