"""The part of Shopify's search syntax the sandbox understands: ``key:value`` terms joined by
spaces or ``AND``, or joined by ``OR`` (https://shopify.dev/docs/api/usage/search-syntax,
"Connectives"), values optionally quoted, comparators ``>``, ``>=``, ``<``, ``<=`` and comma lists.

Free text, ``NOT``, parentheses, a query mixing ``AND`` with ``OR`` (the page gives no
precedence) and unknown keys are refused with a GraphQL error naming the keys that work (Shopify
ignores some of them; refusing is the stricter choice, so a typo such as ``type:`` for
``operation_type:`` cannot silently match everything).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
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


@dataclass(frozen=True, slots=True)
class Query:
    """Terms that must all match (``AND``), or terms of which one must match (``OR``)."""

    terms: tuple[Term, ...] = ()
    any_of: bool = False

    def matches(self, test: Callable[[Term], bool]) -> bool:
        if not self.terms:
            return True
        return any(map(test, self.terms)) if self.any_of else all(map(test, self.terms))


def parse_query(query: str | None, keys: frozenset[str]) -> Query:
    """The terms of ``query``; a GraphQL error for anything outside the supported subset."""
    if not query or not query.strip():
        return Query()
    try:
        words = shlex.split(query)
    except ValueError as exc:
        raise _error(f"Cannot parse the search query: {exc}") from None
    connectives = {w for w in words if w in ("AND", "OR")}
    any_of = "OR" in connectives
    if any_of and (connectives != {"OR"} or len(words) != 2 * words.count("OR") + 1):
        raise _error(
            "The sandbox shop understands OR only between single terms (a OR b OR c):"
            " the search syntax page gives AND and OR no precedence"
        )
    terms = []
    for word in words:
        if word in ("AND", "OR"):
            continue
        match = _TERM.fullmatch(word)
        if match is None or match["key"] not in keys:
            known = ", ".join(sorted(keys))
            raise _error(
                f"The sandbox shop does not understand the search term {word!r}"
                f" (it supports key:value terms with the keys {known})"
            )
        terms.append(Term(match["key"], match["op"] or "=", match["value"]))
    return Query(tuple(terms), any_of)


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
