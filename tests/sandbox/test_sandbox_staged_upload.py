"""Staged uploads of bulk mutation variables: the target, the form POST and its rules."""

from __future__ import annotations

from typing import Any

import httpx

from bulkimg.shopify.documents import load_document
from tests.helpers.fixtures import MakeSandbox
from tests.helpers.sandbox import SandboxSession

STAGED = {
    "resource": "BULK_MUTATION_VARIABLES",
    "filename": "product_set.jsonl",
    "mimeType": "text/jsonl",
    "httpMethod": "POST",
}


def _target(session: SandboxSession, **changes: str) -> Any:
    created = session.data(load_document("staged_uploads_create"), {"input": [STAGED | changes]})
    return created["stagedUploadsCreate"]


def _multipart(parts: list[tuple[str, bytes, bool]], boundary: str = "sandboxboundary") -> bytes:
    """A multipart body with the parts in the given order: (name, value, is a file)."""
    out = b""
    for name, value, is_file in parts:
        disposition = f'form-data; name="{name}"' + ('; filename="a.jsonl"' if is_file else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += value + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def _post_form(session: SandboxSession, url: str, body: bytes) -> httpx.Response:
    headers = {"Content-Type": "multipart/form-data; boundary=sandboxboundary"}
    return session.http.post(url, content=body, headers=headers)


def test_target_points_at_the_sandbox_and_key_is_the_staged_upload_path(
    sandbox: SandboxSession,
) -> None:
    payload = _target(sandbox)
    assert payload["userErrors"] == []
    (target,) = payload["stagedTargets"]
    assert target["url"].startswith(sandbox.url)
    assert target["resourceUrl"] is None
    fields = {p["name"]: p["value"] for p in target["parameters"]}
    assert fields["key"].startswith("tmp/") and "/bulk/" in fields["key"]
    assert fields["key"].endswith("/product_set.jsonl")

    response = sandbox.http.post(
        target["url"], data=fields, files={"file": ("product_set.jsonl", b"{}\n", "text/jsonl")}
    )
    assert response.status_code == 201
    assert f"<Key>{fields['key']}</Key>" in response.text
    run = sandbox.data(
        load_document("bulk_operation_run_mutation"),
        {"mutation": load_document("product_set"), "stagedUploadPath": fields["key"]},
    )["bulkOperationRunMutation"]
    assert run["userErrors"] == [] and run["bulkOperation"]["status"] == "CREATED"


def test_form_whose_file_field_is_not_last_is_refused(sandbox: SandboxSession) -> None:
    (target,) = _target(sandbox)["stagedTargets"]
    fields = [(p["name"], p["value"].encode(), False) for p in target["parameters"]]
    body = _multipart([*fields[:-1], ("file", b"{}\n", True), fields[-1]])
    response = _post_form(sandbox, target["url"], body)
    assert response.status_code == 400
    assert "<Code>InvalidArgument</Code>" in response.text
    path = next(p["value"] for p in target["parameters"] if p["name"] == "key")
    run = sandbox.data(
        load_document("bulk_operation_run_mutation"),
        {"mutation": load_document("product_set"), "stagedUploadPath": path},
    )["bulkOperationRunMutation"]
    assert run["bulkOperation"] is None
    assert run["userErrors"][0]["code"] == "NO_SUCH_FILE"


def test_form_missing_a_parameter_is_refused(sandbox: SandboxSession) -> None:
    (target,) = _target(sandbox)["stagedTargets"]
    fields = [(p["name"], p["value"].encode(), False) for p in target["parameters"]]
    without_acl = [f for f in fields if f[0] != "acl"]
    response = _post_form(sandbox, target["url"], _multipart([*without_acl, ("file", b"", True)]))
    assert response.status_code == 400
    assert "acl" in response.text


def test_form_with_a_forged_policy_is_refused(sandbox: SandboxSession) -> None:
    (target,) = _target(sandbox)["stagedTargets"]
    fields = {p["name"]: p["value"] for p in target["parameters"]}
    fields["x-goog-signature"] = "0" * 64
    response = sandbox.http.post(target["url"], data=fields, files={"file": ("a", b"{}\n")})
    assert response.status_code == 403


def test_file_over_the_size_limit_is_refused_as_entity_too_large(make_sandbox: MakeSandbox) -> None:
    session: SandboxSession = make_sandbox(staged_upload_max_bytes=1000)
    (target,) = _target(session)["stagedTargets"]
    fields = {p["name"]: p["value"] for p in target["parameters"]}
    files = {"file": ("a.jsonl", b"{}\n" * 400, "text/jsonl")}
    response = session.http.post(target["url"], data=fields, files=files)
    assert response.status_code == 400
    assert "<Code>EntityTooLarge</Code>" in response.text
    files = {"file": ("a.jsonl", b"{}\n" * 300, "text/jsonl")}
    assert session.http.post(target["url"], data=fields, files=files).status_code == 201


def test_expired_upload_policy_is_refused(make_sandbox: MakeSandbox) -> None:
    session: SandboxSession = make_sandbox(staged_upload_lifetime=-1)
    (target,) = _target(session)["stagedTargets"]
    fields = {p["name"]: p["value"] for p in target["parameters"]}
    response = session.http.post(target["url"], data=fields, files={"file": ("a", b"{}\n")})
    assert response.status_code == 400
    assert "ExpiredToken" in response.text


def test_only_bulk_mutation_variables_by_post_are_emulated(sandbox: SandboxSession) -> None:
    for changes, field in (
        ({"resource": "IMAGE"}, "resource"),
        ({"httpMethod": "PUT"}, "httpMethod"),
        ({"mimeType": "application/json"}, "mimeType"),
    ):
        payload = _target(sandbox, **changes)
        assert payload["stagedTargets"] == []
        assert payload["userErrors"][0]["field"] == ["input", "0", field]


def test_unknown_staged_upload_path_is_no_such_file(sandbox: SandboxSession) -> None:
    run = sandbox.data(
        load_document("bulk_operation_run_mutation"),
        {"mutation": load_document("product_set"), "stagedUploadPath": "tmp/1/bulk/x/a.jsonl"},
    )["bulkOperationRunMutation"]
    assert run["bulkOperation"] is None
    assert run["userErrors"] == [
        {
            "field": ["stagedUploadPath"],
            "message": "The JSONL file could not be found.",
            "code": "NO_SUCH_FILE",
        }
    ]
