"""Shopify global ids: ``gid://shopify/<Type>/<number>``."""

from __future__ import annotations

import re

from graphql import GraphQLError

SHOP_NUMBER = 68_123_456_789
"""The sandbox shop's own id (gid://shopify/Shop/<n>; also in staged upload keys)."""

_GID = re.compile(r"gid://shopify/([A-Za-z][A-Za-z0-9]*)/([0-9]{1,19})")


def format_gid(type_name: str, number: int) -> str:
    return f"gid://shopify/{type_name}/{number}"


def split_gid(value: str) -> tuple[str, int]:
    """(type, number) of a global id; a malformed id is a GraphQL error, as on Shopify."""
    match = _GID.fullmatch(value)
    if match is None:
        raise GraphQLError(
            f"Invalid global id '{value}'",
            extensions={"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"},
        )
    return match.group(1), int(match.group(2))


def parse_gid(value: str, type_name: str) -> int | None:
    """The number of a global id of ``type_name``; None when it names another type."""
    found_type, number = split_gid(value)
    return number if found_type == type_name else None
