"""The part of Shopify's search syntax the sandbox understands: ``key:value`` terms joined by
spaces (AND), values optionally quoted, comparators ``>``, ``>=``, ``<``, ``<=`` and comma lists.

Free text, ``OR``, ``NOT`` and unknown keys are refused with a GraphQL error naming the keys that
work (Shopify ignores some of them; refusing is the stricter choice, so a typo such as
``type:`` for ``operation_type:`` cannot silently match everything).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from graphql import GraphQLError

_TERM = re.compile(r"(?P<key>[a-z_]+):(?P<op>>=|<=|>|<)?(?P<value>.+)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Term:
    key: str
    comparator: str  # "=", ">", ">=", "<", "<="
    value: str

    def values(self) -> list[str]:
        """The comma-separated alternatives of the value."""
        return [v.strip() for v in self.value.split(",") if v.strip()]


def parse_query(query: str | None, keys: frozenset[str]) -> list[Term]:
    """The terms of ``query``; a GraphQL error for anything outside the supported subset."""
    if not query or not query.strip():
        return []
    try:
        words = shlex.split(query)
    except ValueError as exc:
        raise _error(f"Cannot parse the search query: {exc}") from None
    terms = []
    for word in words:
        if word == "AND":
            continue
        match = _TERM.fullmatch(word)
        if match is None or match["key"] not in keys:
            known = ", ".join(sorted(keys))
            raise _error(
                f"The sandbox shop does not understand the search term {word!r}"
                f" (it supports key:value terms with the keys {known})"
            )
        terms.append(Term(match["key"], match["op"] or "=", match["value"]))
    return terms


def compare(actual: float, term: Term, wanted: float) -> bool:
    return {
        "=": actual == wanted,
        ">": actual > wanted,
        ">=": actual >= wanted,
        "<": actual < wanted,
        "<=": actual <= wanted,
    }[term.comparator]


def _error(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "BAD_REQUEST"})
