"""Reading and writing the JSONL files tests look at."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSONL file ([] when it does not exist; blank lines skipped)."""
    if not path.is_file():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def jsonl_bytes(lines: list[Any]) -> bytes:
    """``lines`` as the bytes of a JSONL file (a bytes item is taken as it is: a broken line)."""
    return b"".join(
        line if isinstance(line, bytes) else orjson.dumps(line) + b"\n" for line in lines
    )
