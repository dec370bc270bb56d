"""Bulk operations: one background thread per running operation.

A bulk mutation runs the lines of its staged JSONL file one at a time, in a shuffled (seeded)
order, each through the same GraphQL executor as ordinary calls; each result line is the
mutation's response plus ``__lineNumber`` (the 0-based input line), written in the order the
lines ran. Lines that fail (bad JSON, invalid variables, userErrors) do not fail the operation;
it ends FAILED only when the staged file changes under it, it runs out of time, the shop shuts
down, or a fault says so. A bulk query's result is flat: one line per node, the nodes of nested
connections carrying ``__parentId``, in shuffled order (ungrouped).
"""

from __future__ import annotations

import hashlib
import logging
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import orjson
from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    parse,
    validate,
    visit,
)

from bulkimg.sandbox.config import SandboxConfig
from bulkimg.sandbox.faults import FaultInjector, FaultRule, Route
from bulkimg.sandbox.store import BulkOperation, Store
from bulkimg.statuses import BulkOperationStatus, BulkOperationType

log = logging.getLogger(__name__)

Response = dict[str, object]
LineRunner = Callable[[str, dict[str, object]], Response]
"""Runs a mutation document with one line's variables; the GraphQL response."""
QueryRunner = Callable[[str], Response]
"""Runs a bulk query without pagination; the GraphQL response."""

# Mutations that make no sense inside a bulk mutation (the sandbox refuses them: stricter).
NOT_IN_BULK: Final = frozenset(
    {
        "bulkOperationRunMutation",
        "bulkOperationRunQuery",
        "bulkOperationCancel",
        "stagedUploadsCreate",
    }
)


class _Stop(Exception):  # noqa: N818 - control flow inside a job
    def __init__(self, status: BulkOperationStatus, error_code: str | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.error_code = error_code


def mutation_problems(schema: GraphQLSchema, text: str) -> list[str]:
    """Why ``text`` cannot be the mutation of a bulk mutation (empty list: it can)."""
    try:
        document = parse(text)
    except GraphQLError as exc:
        return [exc.message]
    errors = [error.message for error in validate(schema, document)]
    if errors:
        return errors
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1 or operations[0].operation is not OperationType.MUTATION:
        return ["the document must hold exactly one mutation operation"]
    fields = [s for s in operations[0].selection_set.selections if isinstance(s, FieldNode)]
    names = [f.name.value for f in fields if f.name.value != "__typename"]
    if len(names) != 1 or len(fields) != len(operations[0].selection_set.selections):
        return ["a bulk mutation must select exactly one mutation field"]
    if names[0] in NOT_IN_BULK:
        return [f"{names[0]} cannot run inside a bulk mutation"]
    connections = _connection_count(schema, text)
    if connections > 1:
        return [f"a bulk mutation may select at most one connection field, not {connections}"]
    return []


def _connection_count(schema: GraphQLSchema, text: str) -> int:
    type_info = TypeInfo(schema)
    found: list[str] = []

    class Count(Visitor):
        def enter_field(self, node: FieldNode, *_: object) -> None:
            field = type_info.get_field_def()
            named = get_named_type(field.type) if field else None
            if isinstance(named, GraphQLObjectType) and {"edges", "pageInfo"} <= set(named.fields):
                found.append(node.name.value)

    visit(parse(text), TypeInfoVisitor(type_info, Count()))
    return len(found)


@dataclass(frozen=True, slots=True)
class _Fingerprint:
    """The staged file as it was when the operation started (Shopify checks a checksum)."""

    path: Path
    stat: tuple[int, int, int]
    digest: str

    @classmethod
    def of(cls, path: Path) -> _Fingerprint:
        return cls(path, _stat(path), _sha256(path))

    def changed(self) -> bool:
        try:
            if _stat(self.path) == self.stat:
                return False
            return _sha256(self.path) != self.digest
        except OSError:
            return True


def _stat(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _line_offsets(path: Path) -> list[tuple[int, int]]:
    """(start, end) of each line, without the line break; no line after a final break."""
    offsets: list[tuple[int, int]] = []
    start = 0
    with path.open("rb") as file:
        position = 0
        for raw in file:
            position += len(raw)
            content = raw.rstrip(b"\r\n")
            offsets.append((start, start + len(content)))
            start = position
    return offsets


def _read(file: BinaryIO, span: tuple[int, int]) -> bytes:
    file.seek(span[0])
    return file.read(span[1] - span[0])


class _ResultWriter:
    """Appends result lines, flushed one by one so partial data is always readable."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = 0
        self._file = path.open("wb")

    def write(self, record: Mapping[str, object]) -> None:
        self._file.write(orjson.dumps(record) + b"\n")
        self._file.flush()
        self.lines += 1

    def close(self) -> None:
        self._file.close()


class BulkOperationWorker:
    """Starts, runs, cancels and recovers the shop's bulk operations."""

    def __init__(
        self,
        store: Store,
        config: SandboxConfig,
        faults: FaultInjector,
        run_line: LineRunner,
        run_query: QueryRunner,
    ) -> None:
        self._store = store
        self._config = config
        self._faults = faults
        self._run_line = run_line
        self._run_query = run_query
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: dict[int, threading.Thread] = {}

    def start(self) -> None:
        """Operations left unfinished by an earlier process end now: stricter than resuming."""
        for operation in self._store.bulk_operations():
            if operation.status is BulkOperationStatus.CANCELING:
                self._store.update_bulk_operation(
                    operation.id, status=BulkOperationStatus.CANCELED, ended_at=time.time()
                )
            elif operation.status.active:
                self._store.update_bulk_operation(
                    operation.id,
                    status=BulkOperationStatus.FAILED,
                    error_code="INTERNAL_SERVER_ERROR",
                    ended_at=time.time(),
                )

    def close(self) -> None:
        """Stop every job; running operations end FAILED, their partial data kept."""
        self._stop.set()
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join()

    def submit(
        self,
        type_: BulkOperationType,
        query: str,
        *,
        staged_key: str | None = None,
        client_identifier: str | None = None,
        group_objects: bool = False,
    ) -> BulkOperation | None:
        """Create and start an operation; None when the concurrency limit is reached."""
        seed = self._config.shuffle_seed
        operation = self._store.create_bulk_operation(
            type_,
            query,
            staged_key=staged_key,
            client_identifier=client_identifier,
            group_objects=group_objects,
            seed=secrets.randbelow(2**31) if seed is None else seed,
            limit=self._config.bulk_concurrency_limit,
        )
        if operation is None:
            return None
        route: Route = "bulk_mutation" if type_ is BulkOperationType.MUTATION else "bulk_query"
        fault = self._faults.match(route)
        thread = threading.Thread(
            target=self._job,
            args=(operation, fault),
            name=f"sandbox-bulk-{operation.id}",
            daemon=True,
        )
        with self._lock:
            self._threads[operation.id] = thread
        thread.start()
        return operation

    def cancel(self, operation_id: int) -> BulkOperation | None:
        return self._store.request_cancel(operation_id)

    # --- jobs ---------------------------------------------------------------------------

    def _job(self, operation: BulkOperation, fault: FaultRule | None) -> None:
        self._store.mark_running(operation.id)
        writer = _ResultWriter(self._store.result_path(operation.id))
        status, error_code = BulkOperationStatus.COMPLETED, None
        try:
            self._checkpoint(operation, 0, fault)
            if operation.type is BulkOperationType.MUTATION:
                self._mutation(operation, fault, writer)
            else:
                self._query(operation, fault, writer)
        except _Stop as stop:
            status, error_code = stop.status, stop.error_code
        except Exception:
            log.exception("sandbox: bulk operation %s crashed", operation.id)
            status, error_code = BulkOperationStatus.FAILED, "INTERNAL_SERVER_ERROR"
        finally:
            writer.close()
            self._finish(operation.id, status, error_code, writer)
            with self._lock:
                self._threads.pop(operation.id, None)

    def _finish(
        self,
        operation_id: int,
        status: BulkOperationStatus,
        error_code: str | None,
        writer: _ResultWriter,
    ) -> None:
        completed = status is BulkOperationStatus.COMPLETED
        now = time.time()
        self._store.update_bulk_operation(
            operation_id,
            status=status,
            error_code=error_code,
            completed_at=now if completed else None,
            ended_at=now,
            result_lines=writer.lines,
            file_size=writer.path.stat().st_size if completed and writer.lines else None,
        )

    def _checkpoint(self, operation: BulkOperation, written: int, fault: FaultRule | None) -> None:
        """Raise _Stop when the operation must end before its next line."""
        if self._stop.is_set():
            raise _Stop(BulkOperationStatus.FAILED, "INTERNAL_SERVER_ERROR")
        current = self._store.bulk_operation(operation.id)
        if current is not None and current.status is BulkOperationStatus.CANCELING:
            raise _Stop(BulkOperationStatus.CANCELED)
        if fault and fault.fail_after_lines is not None and written >= fault.fail_after_lines:
            raise _Stop(BulkOperationStatus.FAILED, "INTERNAL_SERVER_ERROR")
        limit = (
            self._config.bulk_mutation_time_limit
            if operation.type is BulkOperationType.MUTATION
            else self._config.bulk_query_time_limit
        )
        if time.time() - operation.created_at > limit:
            raise _Stop(BulkOperationStatus.FAILED, "TIMEOUT")

    def _mutation(
        self, operation: BulkOperation, fault: FaultRule | None, writer: _ResultWriter
    ) -> None:
        staged = self._store.staged(operation.staged_key or "")
        if staged is None:
            raise _Stop(BulkOperationStatus.FAILED, "INTERNAL_SERVER_ERROR")
        path = self._store.staged_path(staged.stored_as)
        fingerprint = _Fingerprint.of(path)
        spans = _line_offsets(path)
        order = list(range(len(spans)))
        random.Random(operation.seed).shuffle(order)
        skip = set(fault.skip_lines) if fault else set()
        with path.open("rb") as file:
            for number in order:
                self._checkpoint(operation, writer.lines, fault)
                if fingerprint.changed():
                    raise _Stop(BulkOperationStatus.FAILED, "INTERNAL_SERVER_ERROR")
                if number in skip:
                    continue
                if self._stop.wait(self._config.bulk_line_delay):
                    raise _Stop(BulkOperationStatus.FAILED, "INTERNAL_SERVER_ERROR")
                response = self._line(operation.query, _read(file, spans[number]))
                writer.write({**response, "__lineNumber": number})
                self._store.update_bulk_operation(
                    operation.id,
                    object_count=writer.lines,
                    root_object_count=writer.lines,
                    result_lines=writer.lines,
                )

    def _line(self, mutation: str, raw: bytes) -> Response:
        try:
            variables = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return _line_error(f"Invalid JSON on this line: {exc}")
        if not isinstance(variables, dict):
            return _line_error("Each line must be a JSON object holding the mutation's variables")
        return self._run_line(mutation, variables)

    def _query(
        self, operation: BulkOperation, fault: FaultRule | None, writer: _ResultWriter
    ) -> None:
        response = self._run_query(operation.query)
        data = response.get("data")
        if response.get("errors") or not isinstance(data, dict):
            log.info("sandbox: bulk query %s failed: %s", operation.id, response.get("errors"))
            raise _Stop(BulkOperationStatus.FAILED, "INTERNAL_SERVER_ERROR")
        try:
            rows = list(flatten(data))
        except ValueError as exc:
            log.info("sandbox: bulk query %s failed: %s", operation.id, exc)
            raise _Stop(BulkOperationStatus.FAILED, "INTERNAL_SERVER_ERROR") from None
        if not operation.group_objects:
            random.Random(operation.seed).shuffle(rows)
        roots = 0
        try:
            for row, is_root in rows:
                self._checkpoint(operation, writer.lines, fault)
                writer.write(row)
                roots += is_root
        finally:
            self._store.update_bulk_operation(
                operation.id, object_count=writer.lines, root_object_count=roots
            )


def _line_error(message: str) -> Response:
    return {"errors": [{"message": message, "extensions": {"code": "INVALID_JSONL_LINE"}}]}


# --- bulk query output ------------------------------------------------------------------------


def flatten(data: Mapping[str, object]) -> Iterator[tuple[dict[str, object], bool]]:
    """(line, is root) for each node of the top-level connection and of nested connections, in
    grouped order (each parent before its children); children carry ``__parentId``."""
    for value in data.values():
        if _is_connection(value):
            for node in _nodes(value):
                yield from _flatten_node(node, None)


def _flatten_node(
    node: dict[str, object], parent_id: object
) -> Iterator[tuple[dict[str, object], bool]]:
    own, connections = _split(node)
    if parent_id is not None:
        own["__parentId"] = parent_id
    yield own, parent_id is None
    node_id = node.get("id")
    for connection in connections:
        children = _nodes(connection)
        if children and node_id is None:
            raise ValueError("a node with a nested connection must select `id`")
        for child in children:
            yield from _flatten_node(child, node_id)


def _split(value: dict[str, object]) -> tuple[dict[str, object], list[dict[str, object]]]:
    """``value`` without its connections (searched in nested objects too), and those."""
    own: dict[str, object] = {}
    connections: list[dict[str, object]] = []
    for key, item in value.items():
        if _is_connection(item):
            assert isinstance(item, dict)
            connections.append(item)
        elif isinstance(item, dict):
            own[key], nested = _split(item)
            connections.extend(nested)
        else:
            own[key] = item
    return own, connections


def _is_connection(value: object) -> bool:
    return (
        isinstance(value, dict)
        and bool(value)
        and set(value) <= {"edges", "nodes", "pageInfo"}
        and any(isinstance(value.get(k), list) for k in ("edges", "nodes"))
    )


def _nodes(connection: object) -> list[dict[str, object]]:
    assert isinstance(connection, dict)
    edges = connection.get("edges")
    if isinstance(edges, list):
        return [edge["node"] for edge in edges if isinstance(edge, dict) and edge.get("node")]
    nodes = connection.get("nodes")
    return [node for node in nodes if isinstance(node, dict)] if isinstance(nodes, list) else []
