"""The sandbox's subset of Shopify's search syntax: what it understands and what it refuses."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from graphql import GraphQLError

from bulkimg.sandbox.search import Term, parse_query

KEYS = frozenset({"id", "handle", "status"})


def _matching(query: str, rows: list[dict[str, str]]) -> list[str]:
    parsed = parse_query(query, KEYS)

    def holds(row: dict[str, str]) -> Callable[[Term], bool]:
        return lambda term: row.get(term.key) in term.values()

    return [row["id"] for row in rows if parsed.matches(holds(row))]


ROWS = [
    {"id": "1", "handle": "a", "status": "active"},
    {"id": "2", "handle": "b", "status": "draft"},
    {"id": "3", "handle": "c", "status": "active"},
]


def test_terms_joined_by_spaces_or_and_must_all_match() -> None:
    assert _matching("status:active handle:c", ROWS) == ["3"]
    assert _matching("status:active AND handle:a", ROWS) == ["1"]


def test_terms_joined_by_or_match_when_one_does() -> None:
    assert _matching("id:1 OR id:3", ROWS) == ["1", "3"]
    assert parse_query("id:1 OR id:2", KEYS).terms == (Term("id", "=", "1"), Term("id", "=", "2"))


def test_an_empty_query_matches_everything() -> None:
    assert _matching("", ROWS) == ["1", "2", "3"]


@pytest.mark.parametrize(
    "query",
    [
        "id:1 OR id:2 status:active",  # AND and OR mixed: the syntax page gives no precedence
        "id:1 AND id:2 OR id:3",
        "OR id:1",
        "id:1 OR",
        "id:1 OR OR id:2",
        "(id:1 OR id:2)",
        "NOT id:1",
        "free text",
        "type:1",  # an unknown key never matches everything silently
    ],
)
def test_anything_beyond_the_subset_is_refused(query: str) -> None:
    with pytest.raises(GraphQLError):
        parse_query(query, KEYS)
