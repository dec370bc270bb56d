"""What every test shares about its environment: the test bucket, the canary credentials tests
assert never leak, and how a missing prerequisite is reported (a skip; a failure under CI=true)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

BUCKET = "test-media"
IN_CI = os.environ.get("CI") == "true"
# Canary credentials: tests assert they never appear in any output, log or message.
CANARY_KEY_ID = "AKIACANARY0000KEYID"
CANARY_SECRET = "canary/secret/DO-NOT-LEAK-0123456789"
CANARY_TOKEN = "canary-session-token-DO-NOT-LEAK"
SHOP_TOKEN = "shpat_canary_shop_token_DO_NOT_LEAK"


def skip_or_fail(reason: str) -> None:
    """Skip with a reason; under CI=true a missing prerequisite is a failure."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def shared_dir() -> Path:
    default = Path(__file__).resolve().parents[3] / "shared"
    return Path(os.environ.get("BULKIMG_SHARED_DIR", default))


def secrets_in(paths: list[Path], text: str = "") -> list[str]:
    """Which canary secrets appear in the files under `paths` (recursively) or in `text`."""
    canaries = (CANARY_SECRET, CANARY_TOKEN, "canary%2Fsecret", "canary-session-token")
    found = [c for c in canaries if c in text]
    for root in paths:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for file in files:
            data = file.read_bytes()
            found.extend(f"{c} in {file}" for c in canaries if c.encode() in data)
    return found
