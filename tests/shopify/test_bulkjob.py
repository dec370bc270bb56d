"""Unit tests of shopify/bulkjob.py: the BulkRunner state machine (stage, upload, run, poll,
collect).

The shop is a fake client implementing only `execute(name, variables, idempotent=...)` and
`upload_staged(url, parameters, path)`, answering from a script; waits are recorded, not slept.
run.json is written to tmp_path (the runner saves before every remote side effect).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from bulkimg.formats.run import OperationRecord, Phase, RunState, RunStore, Step, now_iso
from bulkimg.shopify.bulkjob import BulkRunner, PollPolicy, new_record
from bulkimg.shopify.client import (
    ShopifyClient,
    ShopifyError,
    ShopifyNetworkError,
    ShopifyServerError,
)
from bulkimg.shopify.documents import load_document
from bulkimg.shopify.results import STAGED_UPLOAD_REFUSED

RUN_ID = "run0123"
UPLOAD_URL = "https://shopify-staged-uploads.storage.googleapis.com/"
Answer = dict[str, Any] | Exception | Callable[[Mapping[str, Any]], dict[str, Any]]


class FakeClient:
    """Answers each GraphQL document from its own queue, in order; records every call in `log`
    (shared with the runner's sleep, so tests see what happened between waits)."""

    def __init__(self, log: list[tuple[str, Any]], **answers: list[Answer]) -> None:
        self.log = log
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any], bool]] = []
        self.uploads: list[tuple[str, dict[str, str], Path]] = []

    def execute(
        self, name: str, variables: Mapping[str, Any] | None = None, *, idempotent: bool = True
    ) -> dict[str, Any]:
        self.calls.append((name, dict(variables or {}), idempotent))
        self.log.append(("call", name))
        queue = self.answers.get(name)
        assert queue, f"unexpected {name} request"
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(variables or {})
        return answer

    # The client's typed queries, over this fake's execute.
    bulk_operation = ShopifyClient.bulk_operation
    bulk_operations = ShopifyClient.bulk_operations

    def upload_staged(self, url: str, parameters: Mapping[str, str], path: Path) -> None:
        self.uploads.append((url, dict(parameters), path))
        self.log.append(("upload", path.name))

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


# -- the shop's answers ---------------------------------------------------------------------------


def staged(key: str = "tmp/1/bulk/abc/lines.jsonl") -> dict[str, Any]:
    parameters = [{"name": "key", "value": key}, {"name": "policy", "value": "p0l1cy"}]
    target = {"url": UPLOAD_URL, "resourceUrl": None, "parameters": parameters}
    return {"stagedUploadsCreate": {"stagedTargets": [target], "userErrors": []}}


def staging_refused(errors: list[Any], targets: list[Any] | None = None) -> dict[str, Any]:
    return {"stagedUploadsCreate": {"stagedTargets": targets, "userErrors": errors}}


def started(number: int, field: str = "bulkOperationRunMutation") -> dict[str, Any]:
    operation = {"id": gid(number), "status": "CREATED"}
    return {field: {"bulkOperation": operation, "userErrors": []}}


def refused(code: str, message: str = "refused") -> dict[str, Any]:
    error = {"field": None, "message": message, "code": code}
    return {"bulkOperationRunMutation": {"bulkOperation": None, "userErrors": [error]}}


def polled(number: int, status: str = "COMPLETED", count: int = 2,
           error_code: str | None = None) -> dict[str, Any]:  # fmt: skip
    operation = {"id": gid(number), "status": status, "errorCode": error_code,
                 "objectCount": str(count), "url": None, "partialDataUrl": None}  # fmt: skip
    return {"bulkOperation": operation}


def listed(*nodes: tuple[int, datetime]) -> dict[str, Any]:
    return {
        "bulkOperations": {
            "nodes": [
                {
                    "id": gid(n),
                    "status": "RUNNING",
                    "type": "MUTATION",
                    "createdAt": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "completedAt": None,
                }
                for n, at in nodes
            ]
        }
    }


def gid(number: int) -> str:
    return f"gid://shopify/BulkOperation/{number}"


# -- the run under test ---------------------------------------------------------------------------


class Setup:
    def __init__(self, tmp_path: Path, files: int = 1, **policy: Any) -> None:
        self.tmp_path = tmp_path
        self.log: list[tuple[str, Any]] = []
        self.state = RunState(run_id=RUN_ID, shop="example.myshopify.com")
        self.paths: list[Path] = []
        for number in range(files):
            path = tmp_path / f"productset-{number + 1}.jsonl"
            path.write_bytes(b'{"input": {"handle": "a"}}\n{"input": {"handle": "b"}}\n')
            self.paths.append(path)
            self.state.operations.append(new_record(Phase.PRODUCT_SET, path, "product_set"))
        self.store = RunStore(tmp_path / "output")
        values = {"interval": 1.0, "max_interval": 3.0, "growth": 2.0} | policy
        self.policy = PollPolicy(**values)

    @property
    def ops(self) -> list[OperationRecord]:
        return self.state.operations

    def sleep(self, seconds: float) -> None:
        self.log.append(("sleep", seconds))

    def client(self, **answers: list[Answer]) -> FakeClient:
        return FakeClient(self.log, **answers)

    def runner(self, client: FakeClient) -> BulkRunner:
        return BulkRunner(cast(ShopifyClient, client), self.store, self.state,
                          self.tmp_path / "results", self.policy, sleep=self.sleep)  # fmt: skip

    def events(self) -> list[str]:
        return [what if kind == "call" else f"{kind} {what}" for kind, what in self.log]

    def saved(self) -> RunState:
        return self.store.load()


# -- the whole life cycle -----------------------------------------------------------------------


def test_a_file_is_staged_uploaded_run_polled_and_collected(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    client = setup.client(
        staged_uploads_create=[staged()],
        bulk_operation_run_mutation=[started(1)],
        bulk_operation=[polled(1, "COMPLETED", count=2)],
    )

    ops = setup.runner(client).run(Phase.PRODUCT_SET)

    assert setup.events() == [
        "staged_uploads_create",
        "upload productset-1.jsonl",
        "bulk_operation_run_mutation",
        "sleep 1.0",
        "bulk_operation",
    ]
    (op,) = ops
    assert (op.step, op.operation_id, op.status, op.object_count) == (
        Step.COLLECTED,
        gid(1),
        "COMPLETED",
        2,
    )
    assert op.staged_upload_path == "tmp/1/bulk/abc/lines.jsonl"
    assert setup.saved().operations[0].step is Step.COLLECTED


def test_the_staged_upload_describes_the_file_and_sends_every_parameter(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    client = setup.client(
        staged_uploads_create=[staged()],
        bulk_operation_run_mutation=[started(1)],
    )

    setup.runner(client).run(Phase.PRODUCT_SET, wait=False)

    name, variables, _ = client.calls[0]
    assert name == "staged_uploads_create"
    size = setup.paths[0].stat().st_size
    assert variables == {
        "input": [
            {
                "resource": "BULK_MUTATION_VARIABLES",
                "filename": "productset-1.jsonl",
                "mimeType": "text/jsonl",
                "httpMethod": "POST",
                "fileSize": str(size),
            }
        ]
    }
    assert client.uploads == [
        (UPLOAD_URL, {"key": "tmp/1/bulk/abc/lines.jsonl", "policy": "p0l1cy"}, setup.paths[0])
    ]


def test_the_run_request_names_the_staged_file_and_is_never_retried_blindly(
    tmp_path: Path,
) -> None:
    setup = Setup(tmp_path)
    client = setup.client(
        staged_uploads_create=[staged("tmp/9/key.jsonl")],
        bulk_operation_run_mutation=[started(1)],
    )

    setup.runner(client).run(Phase.PRODUCT_SET, wait=False)

    name, variables, idempotent = client.calls[1]
    assert (name, idempotent) == ("bulk_operation_run_mutation", False)
    assert variables == {
        "mutation": load_document("product_set"),
        "stagedUploadPath": "tmp/9/key.jsonl",
        "clientIdentifier": f"bulkimg-{RUN_ID}-product_set",
    }


def test_the_submitting_step_is_saved_before_the_run_request_is_sent(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    seen: list[tuple[Step, str | None]] = []

    def check_saved(_: Mapping[str, Any]) -> dict[str, Any]:
        on_disk = setup.saved().operations[0]
        seen.append((on_disk.step, on_disk.staged_upload_path))
        assert on_disk.submitting_since is not None
        return started(1)

    client = setup.client(staged_uploads_create=[staged()],
                          bulk_operation_run_mutation=[check_saved])  # fmt: skip

    setup.runner(client).run(Phase.PRODUCT_SET, wait=False)

    assert seen == [(Step.SUBMITTING, "tmp/1/bulk/abc/lines.jsonl")]
    assert setup.saved().operations[0].step is Step.SUBMITTED


def test_without_wait_the_runner_returns_once_every_file_has_started(tmp_path: Path) -> None:
    setup = Setup(tmp_path, files=2)
    client = setup.client(
        staged_uploads_create=[staged(), staged()],
        bulk_operation_run_mutation=[started(1), started(2)],
    )

    ops = setup.runner(client).run(Phase.PRODUCT_SET, wait=False)

    assert [op.step for op in ops] == [Step.SUBMITTED, Step.SUBMITTED]
    assert [op.operation_id for op in ops] == [gid(1), gid(2)]
    assert "bulk_operation" not in client.names()
    assert not any(kind == "sleep" for kind, _ in setup.log)


def test_polling_waits_longer_each_round_up_to_the_cap(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    client = setup.client(
        staged_uploads_create=[staged()],
        bulk_operation_run_mutation=[started(1)],
        bulk_operation=[polled(1, "RUNNING", 0)] * 4 + [polled(1)],
    )

    setup.runner(client).run(Phase.PRODUCT_SET)

    assert [what for kind, what in setup.log if kind == "sleep"] == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_polling_records_status_error_code_and_object_count(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    client = setup.client(
        staged_uploads_create=[staged()],
        bulk_operation_run_mutation=[started(1)],
        bulk_operation=[polled(1, "RUNNING", 1), polled(1, "FAILED", 7, "ACCESS_DENIED")],
    )

    (op,) = setup.runner(client).run(Phase.PRODUCT_SET)

    assert (op.step, op.status, op.error_code, op.object_count) == (
        Step.COLLECTED,
        "FAILED",
        "ACCESS_DENIED",
        7,
    )
    assert op.finished_at is not None
    assert (op.result_file, op.partial_file) == (None, None)  # the shop gave no URL


def test_an_operation_the_shop_does_not_know_stops_the_run(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    client = setup.client(
        staged_uploads_create=[staged()],
        bulk_operation_run_mutation=[started(1)],
        bulk_operation=[{"bulkOperation": None}],
    )

    with pytest.raises(ShopifyError, match=r"bulk operation .*BulkOperation/1 not found"):
        setup.runner(client).run(Phase.PRODUCT_SET)


def test_a_resumed_finished_operation_is_collected_with_its_latest_status(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    op = setup.ops[0]
    op.step, op.operation_id, op.status = Step.FINISHED, gid(4), "COMPLETED"
    client = setup.client(bulk_operation=[polled(4, "EXPIRED")])

    setup.runner(client).run(Phase.PRODUCT_SET)

    assert client.names() == ["bulk_operation"]
    assert (op.step, op.status) == (Step.COLLECTED, "EXPIRED")


def test_a_bulk_query_is_run_without_staging_anything(tmp_path: Path) -> None:
    setup = Setup(tmp_path, files=0)
    setup.state.operations.append(new_record(Phase.EXPORT, Path(), "export_products"))
    client = setup.client(
        bulk_operation_run_query=[started(3, "bulkOperationRunQuery")],
        bulk_operation=[polled(3)],
    )

    (op,) = setup.runner(client).run(Phase.EXPORT)

    assert client.names() == ["bulk_operation_run_query", "bulk_operation"]
    assert client.calls[0][1:] == ({"query": load_document("export_products")}, False)
    assert client.uploads == []
    assert (op.step, op.operation_id) == (Step.COLLECTED, gid(3))


# -- a busy shop and the concurrency limit -------------------------------------------------------


@pytest.mark.parametrize("code", ["LIMIT_REACHED", "OPERATION_IN_PROGRESS"])
def test_a_busy_shop_is_asked_again_after_the_next_wait(tmp_path: Path, code: str) -> None:
    setup = Setup(tmp_path)
    client = setup.client(
        staged_uploads_create=[staged()],
        bulk_operation_run_mutation=[refused(code), started(1)],
        bulk_operation=[polled(1)],
    )

    (op,) = setup.runner(client).run(Phase.PRODUCT_SET)

    assert setup.events() == [
        "staged_uploads_create",
        "upload productset-1.jsonl",
        "bulk_operation_run_mutation",
        "sleep 1.0",
        "bulk_operation_run_mutation",
        "sleep 2.0",
        "bulk_operation",
    ]
    assert (op.step, op.operation_id, op.rejected_errors) == (Step.COLLECTED, gid(1), [])


def test_a_busy_answer_holds_back_the_other_files_until_the_next_round(tmp_path: Path) -> None:
    setup = Setup(tmp_path, files=2)
    client = setup.client(
        staged_uploads_create=[staged(), staged()],
        bulk_operation_run_mutation=[refused("LIMIT_REACHED"), started(1), started(2)],
        bulk_operation=[polled(1), polled(2)],
    )

    ops = setup.runner(client).run(Phase.PRODUCT_SET)

    assert setup.events()[:4] == [
        "staged_uploads_create",
        "upload productset-1.jsonl",
        "bulk_operation_run_mutation",
        "sleep 1.0",
    ]
    assert [op.operation_id for op in ops] == [gid(1), gid(2)]


def test_no_more_operations_run_at_once_than_the_concurrency_allows(tmp_path: Path) -> None:
    setup = Setup(tmp_path, files=2, concurrency=1)
    client = setup.client(
        staged_uploads_create=[staged(), staged()],
        bulk_operation_run_mutation=[started(1), started(2)],
        bulk_operation=[polled(1, "RUNNING"), polled(1), polled(2)],
    )

    ops = setup.runner(client).run(Phase.PRODUCT_SET)

    assert setup.events() == [
        "staged_uploads_create",
        "upload productset-1.jsonl",
        "bulk_operation_run_mutation",
        "sleep 1.0",
        "bulk_operation",  # 1 RUNNING: the second file waits
        "sleep 2.0",
        "bulk_operation",  # 1 COMPLETED: room for the second
        "staged_uploads_create",
        "upload productset-2.jsonl",
        "bulk_operation_run_mutation",
        "sleep 3.0",
        "bulk_operation",
    ]
    assert [op.step for op in ops] == [Step.COLLECTED, Step.COLLECTED]


# -- refusals ----------------------------------------------------------------------------------


def test_an_input_file_changed_since_the_run_started_is_refused(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    setup.paths[0].write_bytes(b'{"input": {"handle": "other"}}\n')
    client = setup.client()

    with pytest.raises(ShopifyError, match=r"productset-1\.jsonl changed since this run started"):
        setup.runner(client).run(Phase.PRODUCT_SET)

    assert client.calls == []
    assert client.uploads == []
    assert setup.ops[0].step is Step.NEW


def test_staged_upload_user_errors_reject_the_file_and_the_others_go_on(tmp_path: Path) -> None:
    setup = Setup(tmp_path, files=2)
    error = {"field": ["input", "0", "fileSize"], "message": "File is too large"}
    client = setup.client(
        staged_uploads_create=[staging_refused([error]), staged()],
        bulk_operation_run_mutation=[started(2)],
        bulk_operation=[polled(2)],
    )

    first, second = setup.runner(client).run(Phase.PRODUCT_SET)

    assert first.step is Step.REJECTED
    assert [e.model_dump() for e in first.rejected_errors] == [
        {"code": STAGED_UPLOAD_REFUSED, "field": ["input", "0", "fileSize"],
         "message": "File is too large"}
    ]  # fmt: skip
    assert first.finished_at is not None
    assert first.operation_id is None
    assert [path for _, _, path in client.uploads] == [setup.paths[1]]
    assert (second.step, second.operation_id) == (Step.COLLECTED, gid(2))
    assert setup.saved().operations[0].step is Step.REJECTED


def test_no_staged_target_rejects_the_file_with_the_retryable_code(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    client = setup.client(staged_uploads_create=[staging_refused([], targets=[])])

    (op,) = setup.runner(client).run(Phase.PRODUCT_SET)

    assert op.step is Step.REJECTED
    assert [e.model_dump() for e in op.rejected_errors] == [
        {
            "code": STAGED_UPLOAD_REFUSED,
            "field": None,
            "message": "no staged upload target returned",
        }
    ]
    assert client.uploads == []


@pytest.mark.parametrize("code", ["NO_SUCH_FILE", "INVALID_STAGED_UPLOAD_FILE"])
def test_a_staged_file_the_shop_cannot_use_is_staged_and_uploaded_again(
    tmp_path: Path, code: str
) -> None:
    setup = Setup(tmp_path)
    client = setup.client(
        staged_uploads_create=[staged("tmp/first.jsonl"), staged("tmp/second.jsonl")],
        bulk_operation_run_mutation=[refused(code), started(1)],
        bulk_operation=[polled(1)],
    )

    (op,) = setup.runner(client).run(Phase.PRODUCT_SET)

    assert client.names() == [
        "staged_uploads_create",
        "bulk_operation_run_mutation",
        "staged_uploads_create",
        "bulk_operation_run_mutation",
        "bulk_operation",
    ]
    assert len(client.uploads) == 2
    assert client.calls[3][1]["stagedUploadPath"] == "tmp/second.jsonl"
    assert (op.step, op.staged_upload_path) == (Step.COLLECTED, "tmp/second.jsonl")


def test_any_other_refusal_rejects_the_file_with_shopifys_errors(tmp_path: Path) -> None:
    setup = Setup(tmp_path)
    client = setup.client(
        staged_uploads_create=[staged()],
        bulk_operation_run_mutation=[refused("INVALID_MUTATION", "bad mutation")],
    )

    (op,) = setup.runner(client).run(Phase.PRODUCT_SET)

    assert op.step is Step.REJECTED
    assert [e.model_dump() for e in op.rejected_errors] == [
        {"field": None, "message": "bad mutation", "code": "INVALID_MUTATION"}
    ]
    assert client.names() == ["staged_uploads_create", "bulk_operation_run_mutation"]


# -- a lost answer: look before sending again ---------------------------------------------------


@pytest.mark.parametrize(
    "lost",
    [ShopifyNetworkError("read timeout", sent=True), ShopifyServerError("502 Bad Gateway")],
    ids=["network", "server"],
)
def test_a_lost_creation_answer_is_recovered_from_the_apps_bulk_operations(
    tmp_path: Path, lost: Exception
) -> None:
    setup = Setup(tmp_path)
    earlier = new_record(Phase.EXPORT, Path(), "export_products")
    earlier.operation_id, earlier.step = gid(7), Step.COLLECTED
    setup.state.operations.insert(0, earlier)
    now = datetime.now(UTC)
    client = setup.client(
        staged_uploads_create=[staged()],
        bulk_operation_run_mutation=[lost],
        bulk_operations=[
            listed(
                (7, now),  # this run's own earlier operation
                (5, now - timedelta(hours=1)),  # long before this request
                (9, now + timedelta(seconds=3)),
                (8, now - timedelta(minutes=2)),  # the oldest new one (clocks may differ)
            )
        ],
        bulk_operation=[polled(8)],
    )

    ops = setup.runner(client).run(Phase.PRODUCT_SET)

    assert client.names() == [
        "staged_uploads_create",
        "bulk_operation_run_mutation",
        "bulk_operations",
        "bulk_operation",
    ]
    assert client.calls[2][1] == {"query": "operation_type:mutation"}
    assert client.calls[3][1] == {"id": gid(8)}
    assert (ops[0].step, ops[0].operation_id) == (Step.COLLECTED, gid(8))


def test_with_no_operation_found_the_file_is_not_sent_again_before_the_wait(
    tmp_path: Path,
) -> None:
    setup = Setup(tmp_path, uncertain_wait=60.0)
    client = setup.client(
        staged_uploads_create=[staged()],
        bulk_operation_run_mutation=[ShopifyNetworkError("reset", sent=True)],
        bulk_operations=[listed()] * 3,  # looked up at least once this round
    )

    (op,) = setup.runner(client).run(Phase.PRODUCT_SET, wait=False)

    assert op.step is Step.SUBMITTING
    assert op.operation_id is None
    assert client.names().count("bulk_operation_run_mutation") == 1
    assert setup.saved().operations[0].step is Step.SUBMITTING


def test_with_no_operation_found_after_the_wait_the_file_is_submitted_again(
    tmp_path: Path,
) -> None:
    setup = Setup(tmp_path, uncertain_wait=0.0)
    client = setup.client(
        staged_uploads_create=[staged()],
        bulk_operation_run_mutation=[ShopifyNetworkError("reset", sent=True), started(2)],
        bulk_operations=[listed()],
        bulk_operation=[polled(2)],
    )

    (op,) = setup.runner(client).run(Phase.PRODUCT_SET)

    assert client.names() == [
        "staged_uploads_create",
        "bulk_operation_run_mutation",
        "bulk_operations",
        "bulk_operation_run_mutation",
        "bulk_operation",
    ]
    assert len(client.uploads) == 1  # the staged file is reused
    assert (op.step, op.operation_id) == (Step.COLLECTED, gid(2))


def test_a_run_killed_while_submitting_looks_for_its_operation_before_anything(
    tmp_path: Path,
) -> None:
    setup = Setup(tmp_path)
    op = setup.ops[0]
    op.step, op.staged_upload_path, op.submitting_since = Step.SUBMITTING, "tmp/k.jsonl", now_iso()
    client = setup.client(
        bulk_operations=[listed((6, datetime.now(UTC)))],
        bulk_operation=[polled(6)],
    )

    setup.runner(client).run(Phase.PRODUCT_SET)

    assert client.names() == ["bulk_operations", "bulk_operation"]
    assert (op.step, op.operation_id) == (Step.COLLECTED, gid(6))


def test_a_lost_bulk_query_is_looked_for_among_queries(tmp_path: Path) -> None:
    setup = Setup(tmp_path, files=0)
    op = new_record(Phase.RESOLVE, Path(), "export_products")
    op.step, op.submitting_since = Step.SUBMITTING, now_iso()
    setup.state.operations.append(op)
    client = setup.client(bulk_operations=[listed()])

    setup.runner(client).run(Phase.RESOLVE, wait=False)

    assert client.calls == [("bulk_operations", {"query": "operation_type:query"}, True)]
    assert op.step is Step.SUBMITTING
