"""A sandbox shop served on loopback as tests talk to it (GraphQL calls, staged uploads, bulk
operations), and the waits they repeat."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.helpers.files import jsonl_bytes

SANDBOX_TOKEN = "shpat_test_sandbox"  # the sandbox's test token, not a secret


class SandboxSession:
    """A sandbox shop served on loopback, with an httpx client and the calls tests repeat."""

    def __init__(self, shop: Any, url: str) -> None:
        import httpx

        self.shop = shop
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=20)

    def gql(self, query: str, variables: dict[str, Any] | None = None, **kw: Any) -> Any:
        """The JSON body of a GraphQL call (errors included)."""
        token = kw.get("token", SANDBOX_TOKEN)
        body = {"query": query, "variables": variables}
        response = self.http.post(
            self.shop.graphql_path, json=body, headers={"X-Shopify-Access-Token": token}
        )
        assert response.status_code == 200, response.text
        return response.json()

    def data(self, query: str, variables: dict[str, Any] | None = None) -> Any:
        """The data of a call that must not fail."""
        body = self.gql(query, variables)
        assert "errors" not in body, body["errors"]
        return body["data"]

    def stage(self, content: bytes, filename: str = "lines.jsonl") -> str:
        """Upload `content` as bulk mutation variables; its stagedUploadPath."""
        from bulkimg.shopify.documents import load_document

        item = {"resource": "BULK_MUTATION_VARIABLES", "filename": filename}
        item |= {"mimeType": "text/jsonl", "httpMethod": "POST"}
        created = self.data(load_document("staged_uploads_create"), {"input": [item]})
        target = created["stagedUploadsCreate"]["stagedTargets"][0]
        fields = {p["name"]: p["value"] for p in target["parameters"]}
        files = {"file": (filename, content, "text/jsonl")}
        response = self.http.post(target["url"], data=fields, files=files)
        assert response.status_code == 201, response.text
        return fields["key"]

    def run_bulk_mutation(self, mutation: str, lines: list[Any] | bytes) -> Any:
        """Stage `lines` (dicts become JSON lines) and start a bulk mutation; its payload."""
        from bulkimg.shopify.documents import load_document

        content = lines if isinstance(lines, bytes) else jsonl_bytes(lines)
        variables = {"mutation": mutation, "stagedUploadPath": self.stage(content)}
        data = self.data(load_document("bulk_operation_run_mutation"), variables)
        return data["bulkOperationRunMutation"]

    def operation(self, operation_id: str) -> Any:
        from bulkimg.shopify.documents import load_document

        return self.data(load_document("bulk_operation"), {"id": operation_id})["bulkOperation"]

    def wait_operation(self, operation_id: str, timeout: float = 20) -> Any:
        """Poll the operation until it ends; the last BulkOperation seen."""
        ended = ("COMPLETED", "FAILED", "CANCELED", "EXPIRED")
        return wait_for(
            lambda: self.operation(operation_id), lambda op: op["status"] in ended, timeout
        )

    def results(self, url: str) -> list[Any]:
        import orjson

        response = self.http.get(url)
        assert response.status_code == 200, response.text
        return [orjson.loads(line) for line in response.content.splitlines()]

    def close(self) -> None:
        self.http.close()


def product_line(
    handle: str, skus: tuple[str, ...] = ("1",), files: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """productSet variables as bulkimg writes them: one option SKU, one variant per SKU."""
    product: dict[str, Any] = {
        "handle": handle,
        "title": f"Product {handle}",
        "productOptions": [{"name": "SKU", "values": [{"name": sku} for sku in skus]}],
        "variants": [
            {"sku": sku, "optionValues": [{"optionName": "SKU", "name": sku}]} for sku in skus
        ],
    }
    if files is not None:
        product["files"] = files
    return {"identifier": {"handle": handle}, "input": product}


def wait_for(get: Any, done: Any, timeout: float = 20, interval: float = 0.05) -> Any:
    """Call `get` until `done(value)` (or fail after `timeout` seconds); the last value."""

    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if done(value):
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting after {timeout} s: {value!r}")
        time.sleep(interval)
