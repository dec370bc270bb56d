"""Reading and writing JSONL files of typed records: one reader and one writer for every file
bulkimg writes (Shopify's own files are read in shopify/results.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import orjson
from pydantic import BaseModel

from bulkimg.errors import InputFileError
from bulkimg.outputs import create_private

ModelT = TypeVar("ModelT", bound=BaseModel)


def read_models(path: Path, model: type[ModelT], what: str | None = None) -> Iterator[ModelT]:
    """The records of a JSONL file as `model`, one at a time (blank lines skipped); a line that
    is not one is an InputFileError naming the file, the line and `what` it should be."""
    what = what or f"a {model.__name__}"
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                try:
                    yield model.model_validate_json(raw)
                except ValueError as exc:
                    first = str(exc).splitlines()[0]
                    raise InputFileError(f"{path}:{number}: not {what} ({first})") from None


def dump_model(record: BaseModel) -> bytes:
    """One JSONL line of `record` (its fields in declaration order, None kept)."""
    return orjson.dumps(record.model_dump(mode="json")) + b"\n"


def write_models(path: Path, records: Iterable[BaseModel]) -> None:
    """`records` as the whole of `path`, 0600 (they may hold signed URLs); the file is replaced
    only once every line is written, so a reader never sees half of it (a writer that fails
    midway leaves the file as it was and no temporary file behind)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    try:
        with create_private(temp) as handle:
            for record in records:
                handle.write(dump_model(record))
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    temp.replace(path)
