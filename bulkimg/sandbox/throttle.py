"""Cost-based throttling of ordinary GraphQL calls: a leaky bucket per access token and the
requested cost of a document.

Cost estimate (Shopify's rules, https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits):
a scalar or enum field costs 0, an object field 1, a connection ``2 + n * (1 + cost of a node's
selection)`` with ``n`` its ``first``/``last`` argument, a mutation field 10 plus its payload's
selection. Interfaces and unions are counted with every fragment (an over-estimate: stricter).
The sandbox charges the requested cost and refunds nothing, so it throttles no later than Shopify.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    VariableNode,
    get_named_type,
)

from bulkimg.shopify.documents import selected_fields

MUTATION_COST = 10
_Composite = GraphQLObjectType | GraphQLInterfaceType


@dataclass(frozen=True, slots=True)
class ThrottleStatus:
    maximum_available: float
    currently_available: float
    restore_rate: float

    def to_json(self) -> dict[str, float]:
        return {
            "maximumAvailable": self.maximum_available,
            "currentlyAvailable": round(self.currently_available, 1),
            "restoreRate": self.restore_rate,
        }


class LeakyBucket:
    """Holds up to ``size`` points and regains ``restore_rate`` points per second."""

    def __init__(self, size: float, restore_rate: float) -> None:
        self.size = size
        self.restore_rate = restore_rate
        self._available = size
        self._at = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self._available = min(self.size, self._available + (now - self._at) * self.restore_rate)
        self._at = now

    def take(self, cost: float) -> bool:
        """Take ``cost`` points if available now; False (nothing taken) otherwise."""
        self._refill()
        if cost > self._available:
            return False
        self._available -= cost
        return True

    def status(self) -> ThrottleStatus:
        self._refill()
        return ThrottleStatus(self.size, self._available, self.restore_rate)


class Throttle:
    """One bucket per access token (Shopify: per app and shop)."""

    def __init__(self, size: float, restore_rate: float) -> None:
        self.size = size
        self.restore_rate = restore_rate
        self._lock = threading.Lock()
        self._buckets: dict[str, LeakyBucket] = {}

    def charge(self, token: str, cost: float) -> tuple[bool, ThrottleStatus]:
        """(taken, status after the attempt)."""
        with self._lock:
            bucket = self._buckets.get(token)
            if bucket is None:
                bucket = self._buckets[token] = LeakyBucket(self.size, self.restore_rate)
            taken = bucket.take(cost)
            return taken, bucket.status()


def requested_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, object],
) -> int:
    """The requested cost of ``operation`` (see the module docstring)."""
    return _CostWalker(schema, document, variables).operation(operation)


class _CostWalker:
    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: Mapping[str, object]
    ) -> None:
        self.schema = schema
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }

    def operation(self, operation: OperationDefinitionNode) -> int:
        is_mutation = operation.operation is OperationType.MUTATION
        root = self.schema.mutation_type if is_mutation else self.schema.query_type
        if root is None:
            return 0
        if not is_mutation:
            return self.selection(root, operation.selection_set)
        total = 0
        for owner, node in self.fields(root, operation.selection_set):
            field = owner.fields.get(node.name.value)
            named = get_named_type(field.type) if field else None
            inner = node.selection_set
            payload = self.selection(named, inner) if inner and isinstance(named, _Composite) else 0
            total += MUTATION_COST + payload
        return total

    def fields(
        self, parent: _Composite, selections: SelectionSetNode
    ) -> Iterator[tuple[_Composite, FieldNode]]:
        """The fields selected on object and interface types (a union has none to cost)."""
        for owner, node in selected_fields(self.schema, self.fragments, parent, selections):
            if isinstance(owner, _Composite):
                yield owner, node

    def selection(self, parent: _Composite, selections: SelectionSetNode) -> int:
        total = 0
        for owner, node in self.fields(parent, selections):
            field = owner.fields.get(node.name.value)
            if field is None or node.selection_set is None:
                continue  # __typename, scalars and enums cost nothing
            named = get_named_type(field.type)
            if not isinstance(named, _Composite):
                total += 1 if isinstance(named, GraphQLUnionType) else 0
                continue
            if isinstance(named, GraphQLObjectType) and _is_connection(named):
                total += 2 + self.page_size(node) * (1 + self.node_cost(named, node.selection_set))
            else:
                total += 1 + self.selection(named, node.selection_set)
        return total

    def node_cost(self, connection: GraphQLObjectType, selections: SelectionSetNode) -> int:
        """The cost of one node of a connection: the costlier of its edges.node and nodes."""
        costs = [0]
        for _, node in self.fields(connection, selections):
            name = node.name.value
            if name not in ("edges", "nodes") or node.selection_set is None:
                continue
            if name == "nodes":
                node_type = get_named_type(connection.fields["nodes"].type)
                if isinstance(node_type, _Composite):
                    costs.append(self.selection(node_type, node.selection_set))
                continue
            edge_type = get_named_type(connection.fields["edges"].type)
            if not isinstance(edge_type, GraphQLObjectType):
                continue
            for _, edge_field in self.fields(edge_type, node.selection_set):
                node_type = get_named_type(edge_type.fields["node"].type)
                inner = edge_field.selection_set
                if edge_field.name.value == "node" and inner and isinstance(node_type, _Composite):
                    costs.append(self.selection(node_type, inner))
        return max(costs)

    def page_size(self, node: FieldNode) -> int:
        for argument in node.arguments or ():
            if argument.name.value not in ("first", "last"):
                continue
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            if isinstance(value, VariableNode):
                given = self.variables.get(value.name.value)
                if isinstance(given, int):
                    return given
        return 0


def _is_connection(type_: _Composite) -> bool:
    return (
        isinstance(type_, GraphQLObjectType)
        and "edges" in type_.fields
        and ("pageInfo" in type_.fields)
    )
