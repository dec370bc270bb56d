"""The GraphQL documents bulkimg sends, the Admin API version they target, and checks for them.

The documents live in ``bulkimg/documents/*.graphql`` (one named operation per file). Next to them,
``schema.admin-<version>.graphql`` is the subset of Shopify's Admin schema those documents use; it
serves the sandbox shop and lets tests validate documents and variables without the 3.7 MB full
schema. :func:`full_schema` loads Shopify's full schema (introspection JSON or SDL) when present.
"""

from __future__ import annotations

import functools
import gzip
import importlib.resources
import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, Final, cast

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSyntaxError,
    GraphQLUnionType,
    InlineFragmentNode,
    IntrospectionQuery,
    NameNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    build_client_schema,
    build_schema,
    get_named_type,
    get_nullable_type,
    get_variable_values,
    is_list_type,
    parse,
    print_ast,
    validate,
)

from bulkimg.config import ADMIN_API_VERSION

__all__ = [
    "ADMIN_API_VERSION",
    "MAX_BULK_CONNECTIONS",
    "MAX_BULK_NESTED_CONNECTION_DEPTH",
    "document_names",
    "full_schema",
    "load_document",
    "search_in_bulk_query",
    "selected_fields",
    "subset_schema",
    "validate_bulk_query",
    "validate_operation",
]

"""The Shopify Admin API version every document targets: the one place it is pinned."""

_SUFFIX: Final = ".graphql"
_SUBSET_SCHEMA_FILE: Final = f"schema.admin-{ADMIN_API_VERSION}{_SUFFIX}"

# Bulk query limits (https://shopify.dev/docs/api/usage/bulk-operations/queries).
MAX_BULK_CONNECTIONS: Final = 5
MAX_BULK_NESTED_CONNECTION_DEPTH: Final = 2
"""Connections nested inside the top-level one, e.g. products > variants > media is 2."""


def _documents_dir() -> Traversable:
    return importlib.resources.files("bulkimg") / "documents"


def _is_document_file(name: str) -> bool:
    return name.endswith(_SUFFIX) and not name.startswith("schema.")


def document_names() -> list[str]:
    """Names (file stems) of all shipped GraphQL documents, sorted; the schema file excluded."""
    return sorted(
        entry.name.removesuffix(_SUFFIX)
        for entry in _documents_dir().iterdir()
        if entry.is_file() and _is_document_file(entry.name)
    )


@functools.cache
def load_document(name: str) -> str:
    """Text of ``documents/<name>.graphql``; ``name`` may carry the ``.graphql`` suffix.

    Raises LookupError naming the known documents when there is no such document.
    """
    stem = name.removesuffix(_SUFFIX)
    if stem not in document_names():
        known = ", ".join(document_names()) or "none"
        raise LookupError(f"unknown GraphQL document {name!r} (known documents: {known})")
    return (_documents_dir() / f"{stem}{_SUFFIX}").read_text(encoding="utf-8")


def search_in_bulk_query(name: str, search: str | None) -> str:
    """The text of the bulk query ``name`` with ``search`` as its top-level connection's
    ``query:`` argument (Shopify's search syntax), or the document as shipped when None.

    A bulk query takes no variables, so the search is written into the text; it goes in through
    the document's syntax tree, so no quote in it can change the query's shape."""
    text = load_document(name)
    if search is None:
        return text
    document = parse(text)
    original = operation = _operations(document)[0]
    top = operation.selection_set.selections[0]
    if not isinstance(top, FieldNode):
        raise ValueError(f"{name}: the first selection is not a field")
    argument = ArgumentNode(name=NameNode(value="query"), value=StringValueNode(value=search))
    top = replace(top, arguments=(*(top.arguments or ()), argument))
    selections = (top, *operation.selection_set.selections[1:])
    operation = replace(
        operation, selection_set=replace(operation.selection_set, selections=selections)
    )
    definitions = tuple(operation if d is original else d for d in document.definitions)
    return print_ast(replace(document, definitions=definitions))


@functools.cache
def subset_schema() -> GraphQLSchema:
    """The shipped subset of the Admin schema (built once, then cached)."""
    sdl = (_documents_dir() / _SUBSET_SCHEMA_FILE).read_text(encoding="utf-8")
    return build_schema(sdl)


def full_schema(path: Path) -> GraphQLSchema:
    """Shopify's full Admin schema from an introspection result (``.json`` or ``.json.gz``) or an
    SDL file, built with ``assume_valid=True`` (Shopify's schema breaks a newer SDL rule about
    deprecated interface fields; documents are still validated normally). Cached per path.
    """
    return _full_schema(Path(path).resolve())


@functools.cache
def _full_schema(path: Path) -> GraphQLSchema:
    name = path.name.lower()
    if name.endswith((".json", ".json.gz")):
        raw = path.read_bytes()
        result: Any = json.loads(gzip.decompress(raw) if name.endswith(".gz") else raw)
        data = result.get("data", result) if isinstance(result, dict) else None
        if not isinstance(data, dict) or "__schema" not in data:
            raise ValueError(f"{path} is not a GraphQL introspection result")
        return build_client_schema(cast(IntrospectionQuery, data), assume_valid=True)
    return build_schema(path.read_text(encoding="utf-8"), assume_valid=True)


def _format_error(error: GraphQLError) -> str:
    where = ", ".join(f"{loc.line}:{loc.column}" for loc in error.locations or ())
    return f"{error.message} (at {where})" if where else error.message


def _parse(document: str) -> DocumentNode | list[str]:
    try:
        return parse(document)
    except GraphQLSyntaxError as error:
        return [f"syntax error: {_format_error(error)}"]


def _operations(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


def validate_operation(
    schema: GraphQLSchema, document: str, variables: Mapping[str, object] | None = None
) -> list[str]:
    """Errors of ``document`` against ``schema`` (empty list: valid).

    With ``variables``, also coerce them against the variable definitions of the document's
    (single) operation, as the server would: unknown or missing input fields, wrong enum values,
    a @oneOf input given zero or two fields, etc. come back as readable messages.
    """
    parsed = _parse(document)
    if isinstance(parsed, list):
        return parsed
    errors = [_format_error(error) for error in validate(schema, parsed)]
    if errors or variables is None:
        return errors
    operations = _operations(parsed)
    if len(operations) != 1:
        return [f"cannot check variables: the document holds {len(operations)} operations, not 1"]
    coerced = get_variable_values(schema, operations[0].variable_definitions or (), dict(variables))
    if isinstance(coerced, list):
        return [_format_error(error) for error in coerced]
    return []


def _is_connection(type_: GraphQLNamedType) -> bool:
    return (
        isinstance(type_, GraphQLObjectType)
        and "edges" in type_.fields
        and "pageInfo" in type_.fields
    )


_Composite = GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType
CompositeType = _Composite


def selected_fields(
    schema: GraphQLSchema,
    fragments: Mapping[str, FragmentDefinitionNode],
    parent: CompositeType,
    selections: SelectionSetNode,
    seen: frozenset[str] = frozenset(),
) -> Iterator[tuple[CompositeType, FieldNode]]:
    """The fields selected on ``parent``, with fragments flattened, and the type they are on."""
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            yield parent, selection
            continue
        if isinstance(selection, InlineFragmentNode):
            cond, inner_set, name = selection.type_condition, selection.selection_set, None
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in seen:
                continue
            cond, inner_set = fragment.type_condition, fragment.selection_set
        else:
            continue
        inner = schema.get_type(cond.name.value) if cond else parent
        if isinstance(inner, _Composite):
            more = seen | {name} if name else seen
            yield from selected_fields(schema, fragments, inner, inner_set, more)


class _BulkLimits:
    """Walks a validated bulk query, collecting the connection fields and their nesting."""

    def __init__(self, schema: GraphQLSchema, document: DocumentNode) -> None:
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.connections: list[tuple[str, int]] = []  # (path, levels below the top connection)
        self.in_list: list[str] = []

    def fields(
        self, parent: _Composite, selections: SelectionSetNode
    ) -> Iterator[tuple[_Composite, FieldNode]]:
        return selected_fields(self.schema, self.fragments, parent, selections)

    def walk(
        self, parent: _Composite, selections: SelectionSetNode, path: str, depth: int, in_list: bool
    ) -> None:
        """Record the connections below ``parent``; ``depth`` counts enclosing connections
        (-1 above the first one) and ``in_list`` tells whether a list field encloses us."""
        parent_is_connection = _is_connection(parent)
        for owner, node in self.fields(parent, selections):
            name = node.name.value
            if isinstance(owner, GraphQLUnionType) or name.startswith("__"):
                continue
            field_type = owner.fields[name].type
            field_path = f"{path}.{name}" if path else name
            named = get_named_type(field_type)
            child_depth, child_in_list = depth, in_list
            if _is_connection(named):
                if in_list:
                    self.in_list.append(field_path)
                child_depth = depth + 1
                self.connections.append((field_path, child_depth))
            elif is_list_type(get_nullable_type(field_type)) and not parent_is_connection:
                child_in_list = True  # a connection's own edges/nodes lists do not count
            if node.selection_set is not None and isinstance(named, _Composite):
                self.walk(named, node.selection_set, field_path, child_depth, child_in_list)


def validate_bulk_query(schema: GraphQLSchema, query_text: str) -> list[str]:
    """Errors of a bulk query (the text given to bulkOperationRunQuery); empty list: valid.

    Besides ordinary validation against ``schema``: one query operation without variables, a
    single top-level field that is not ``node``/``nodes``, at least one and at most 5 connection
    fields, connections nested at most 2 levels below the top-level connection, and no connection
    inside a list field.
    """
    parsed = _parse(query_text)
    if isinstance(parsed, list):
        return parsed
    errors = [_format_error(error) for error in validate(schema, parsed)]
    if errors:
        return errors
    operations = _operations(parsed)
    if len(operations) != 1:
        return [f"a bulk query holds exactly 1 operation, not {len(operations)}"]
    operation = operations[0]
    if operation.operation is not OperationType.QUERY:
        return [f"a bulk query must be a query, not a {operation.operation.value}"]
    if operation.variable_definitions:
        errors.append("a bulk query takes no variables (bulkOperationRunQuery has no variables)")
    root = schema.query_type
    assert root is not None  # validation passed, so the schema has a query type
    walker = _BulkLimits(schema, parsed)
    top = [node for _, node in walker.fields(root, operation.selection_set)]
    top_names = sorted({node.name.value for node in top if not node.name.value.startswith("__")})
    if len(top_names) != 1:
        errors.append(f"a bulk query selects a single top-level field, not {top_names}")
    errors.extend(
        f"the top-level field {name!r} cannot be used in a bulk query"
        for name in top_names
        if name in ("node", "nodes")
    )
    walker.walk(root, operation.selection_set, "", -1, in_list=False)
    if not walker.connections:
        errors.append("a bulk query must select at least one connection field")
    if len(walker.connections) > MAX_BULK_CONNECTIONS:
        paths = ", ".join(path for path, _ in walker.connections)
        errors.append(
            f"a bulk query may select at most {MAX_BULK_CONNECTIONS} connections, "
            f"not {len(walker.connections)}: {paths}"
        )
    errors.extend(
        f"connection {path!r} is nested {depth} levels deep; at most "
        f"{MAX_BULK_NESTED_CONNECTION_DEPTH} below the top-level connection are allowed"
        for path, depth in walker.connections
        if depth > MAX_BULK_NESTED_CONNECTION_DEPTH
    )
    errors.extend(
        f"connection {path!r} is inside a list field, which bulk queries do not support"
        for path in walker.in_list
    )
    return errors
