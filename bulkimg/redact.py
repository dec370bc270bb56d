"""Hiding the secret parts of presigned URLs in text that leaves the process (logs, messages,
output files): one rule for bulkimg and its sandbox."""

from __future__ import annotations

import re

# `=` or, in a URL quoted inside another (a query parameter's value), `%3D` ... `%26`.
_SIGNED_QUERY = re.compile(
    r"(?i)((?:x-amz-|x-goog-)?(?:signature|security-token|credential)(?:=|%3D))"
    r"(?:(?!%26)[^&\s\"'])+"
)


def redact_url(text: str) -> str:
    """``text`` with the values of signature, token and credential query parameters hidden."""
    return _SIGNED_QUERY.sub(r"\1REDACTED", text)
