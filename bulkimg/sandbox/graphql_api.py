"""GraphQL execution with graphql-core against the Admin schema, answering in Shopify's shapes.

Every request is parsed and validated against the schema; variables are coerced against the
operation's definitions; an ordinary call is then charged its requested cost (see throttle.py)
and executed. Errors keep the GraphQL response shape Shopify uses, ``{"errors": [{"message",
"locations", "extensions": {"code"}}]}``, and successful calls carry ``extensions.cost``.

Resolvers are passed to ``execute`` (``field_resolver``/``type_resolver``) rather than attached
to the schema: the schema object is cached and shared by the whole process (graphql_schema).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    execute_sync,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)
from graphql.execution.values import get_variable_values

from bulkimg.sandbox.resolvers import MUTATION_FIELDS, QUERY_FIELDS
from bulkimg.sandbox.throttle import Throttle, requested_cost
from bulkimg.sandbox.views import Context, make_field_resolver, resolve_type

log = logging.getLogger(__name__)

Response = dict[str, object]
MAX_QUERY_COST: Final = 1000
"""Shopify refuses any single query whose requested cost passes 1,000 points."""

# Error codes named like graphql-ruby's, the GraphQL library Shopify runs. Shopify documents the
# shape (extensions.code) but not these values: clients should not branch on them.
_RULE_CODES: Final = {
    "FieldsOnCorrectTypeRule": "undefinedField",
    "KnownArgumentNamesRule": "argumentNotAccepted",
    "ProvidedRequiredArgumentsRule": "missingRequiredArguments",
    "ValuesOfCorrectTypeRule": "argumentLiteralsIncompatible",
    "KnownTypeNamesRule": "undefinedType",
    "NoUndefinedVariablesRule": "variableNotDefined",
    "NoUnusedVariablesRule": "variableNotUsed",
    "VariablesInAllowedPositionRule": "variableMismatch",
    "ScalarLeafsRule": "selectionMismatch",
}
_INTERNAL = "Internal error. Looks like something went wrong on our end."


def _error(message: str, code: str, error: GraphQLError | None = None, **extra: object) -> Response:
    body: Response = {"message": message}
    if error is not None and error.locations:
        body["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error is not None and error.path:
        body["path"] = list(error.path)
    body["extensions"] = {"code": code, **extra}
    return body


@dataclass(frozen=True, slots=True)
class _Prepared:
    document: DocumentNode | None
    errors: tuple[Response, ...]


@functools.lru_cache(maxsize=512)
def _prepare(schema: GraphQLSchema, text: str) -> _Prepared:
    """Parse and validate once per document text (bulk lines repeat the same document)."""
    try:
        document = parse(text)
    except GraphQLError as exc:
        return _Prepared(None, (_error(exc.message, "parseError", exc),))
    if not validate(schema, document):
        return _Prepared(document, ())
    errors = [
        _error(error.message, _RULE_CODES.get(rule.__name__, "validationFailed"), error)
        for rule in specified_rules
        for error in validate(schema, document, [rule])
    ]
    return _Prepared(None, tuple(errors))


class Executor:
    """Runs documents for one shop."""

    def __init__(self, schema: GraphQLSchema, throttle: Throttle) -> None:
        self.schema = schema
        self.throttle = throttle
        self._resolve = make_field_resolver(QUERY_FIELDS, MUTATION_FIELDS)

    def operation_name(self, text: str, given: str | None) -> str | None:
        """The name of the operation a request runs (for fault rules)."""
        if given:
            return given
        prepared = _prepare(self.schema, text)
        operation = get_operation_ast(prepared.document) if prepared.document else None
        return operation.name.value if operation and operation.name else None

    def request(
        self,
        ctx: Context,
        token: str,
        text: str,
        variables: Mapping[str, object] | None,
        operation_name: str | None,
    ) -> Response:
        """An ordinary (throttled) call."""
        checked = self._check(text, variables, operation_name)
        if not isinstance(checked, tuple):
            return checked
        document, operation, coerced = checked
        cost = requested_cost(self.schema, document, operation, coerced)
        max_cost = min(MAX_QUERY_COST, self.throttle.size)
        if cost > max_cost:
            message = (
                f"Query cost is {cost}, which exceeds the single query max cost limit"
                f" ({max_cost:g})."
            )
            error = _error(message, "MAX_COST_EXCEEDED", cost=cost, maxCost=max_cost)
            _, status = self.throttle.charge(token, 0)
            return {"errors": [error], "extensions": {"cost": _cost(cost, None, status.to_json())}}
        taken, status = self.throttle.charge(token, cost)
        if not taken:
            throttled = _error(
                "Throttled",
                "THROTTLED",
                documentation="https://shopify.dev/api/usage/rate-limits",
            )
            return {
                "errors": [throttled],
                "extensions": {"cost": _cost(cost, None, status.to_json())},
            }
        response = self._execute(ctx, document, coerced, operation_name)
        response["extensions"] = {"cost": _cost(cost, cost, status.to_json())}
        return response

    def run(
        self, ctx: Context, text: str, variables: Mapping[str, object] | None = None
    ) -> Response:
        """A call that is not throttled: one line of a bulk mutation, or a bulk query."""
        checked = self._check(text, variables, None)
        if not isinstance(checked, tuple):
            return checked
        document, _, coerced = checked
        return self._execute(ctx, document, coerced, None)

    def _check(
        self, text: str, variables: Mapping[str, object] | None, operation_name: str | None
    ) -> Response | tuple[DocumentNode, OperationDefinitionNode, dict[str, object]]:
        """The document, its operation and the coerced variables; or the error response."""
        prepared = _prepare(self.schema, text)
        if prepared.document is None:
            return {"errors": list(prepared.errors)}
        operation = get_operation_ast(prepared.document, operation_name)
        if operation is None:
            message = (
                f"Unknown operation named '{operation_name}'."
                if operation_name
                else "An operation name is required when the document holds several operations."
            )
            return {"errors": [_error(message, "BAD_REQUEST")]}
        coerced = get_variable_values(
            self.schema, operation.variable_definitions or (), dict(variables or {})
        )
        if isinstance(coerced, list):
            return {"errors": [_error(e.message, "INVALID_VARIABLE", e) for e in coerced]}
        return prepared.document, operation, dict(coerced.coerced)

    def _execute(
        self,
        ctx: Context,
        document: DocumentNode,
        variables: dict[str, object],
        operation_name: str | None,
    ) -> Response:
        result: ExecutionResult = execute_sync(
            self.schema,
            document,
            context_value=ctx,
            variable_values=variables,
            operation_name=operation_name,
            field_resolver=self._resolve,
            type_resolver=resolve_type,
        )
        response: Response = {}
        if result.errors:
            response["errors"] = [_execution_error(error) for error in result.errors]
        response["data"] = result.data
        return response


def _execution_error(error: GraphQLError) -> Response:
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        extra = {k: v for k, v in (error.extensions or {}).items() if k != "code"}
        return _error(error.message, code, error, **extra)
    if error.original_error is not None:
        log.error("sandbox: resolver failed", exc_info=error.original_error)
        return _error(_INTERNAL, "INTERNAL_SERVER_ERROR", error)
    return _error(error.message, "INTERNAL_SERVER_ERROR", error)


def _cost(requested: int, actual: int | None, status: Mapping[str, float]) -> Response:
    return {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": status}
