"""Write a run's output files all-or-nothing: temp files first, renamed into place at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TypeVar

from pydantic import BaseModel

ModelT = TypeVar("ModelT", bound=BaseModel)


def create_private(path: Path) -> BinaryIO:
    """A new file only its owner can read, 0600 from its creation (never chmod-ed after): its
    lines may hold presigned URLs. A file of that name is replaced."""
    path.unlink(missing_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


class OutputSet:
    """Files written under temporary names and renamed together by commit()."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path, BinaryIO]] = []

    def open(self, final: Path) -> BinaryIO:
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        handle = create_private(temp)
        self._pending.append((temp, final, handle))
        return handle

    def discard(self, final: Path) -> None:
        """Drop a pending file (written, then found unnecessary)."""
        for entry in [e for e in self._pending if e[1] == final]:
            entry[2].close()
            entry[0].unlink(missing_ok=True)
            self._pending.remove(entry)

    def _entry(self, final: Path) -> tuple[Path, Path, BinaryIO]:
        return next(e for e in self._pending if e[1] == final)

    def written_temp(self, final: Path) -> Path:
        """Close a pending file and return its temporary path, to read it back."""
        temp, _, handle = self._entry(final)
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        return temp

    def retarget(self, final: Path, new_final: Path) -> None:
        """Give a pending file another final name."""
        entry = self._entry(final)
        self._pending[self._pending.index(entry)] = (entry[0], new_final, entry[2])

    def commit(self) -> list[Path]:
        for _, _, handle in self._pending:
            if not handle.closed:
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
        for temp, final, _ in self._pending:
            temp.replace(final)
        finals = [final for _, final, _ in self._pending]
        self._pending.clear()
        return finals

    def abort(self) -> None:
        for temp, _, handle in self._pending:
            handle.close()
            temp.unlink(missing_ok=True)
        self._pending.clear()


@contextmanager
def output_set() -> Iterator[OutputSet]:
    """An OutputSet that is aborted (temp files removed) if the block raises."""
    outputs = OutputSet()
    try:
        yield outputs
    except BaseException:
        outputs.abort()
        raise


class PartedJsonl:
    """JSONL split into parts that each stay under `max_bytes` (Shopify's staged-file limit).

    Parts are named `<stem>-0001.jsonl`, …; a single part is named `<stem>.jsonl`.
    """

    def __init__(self, outputs: OutputSet, directory: Path, stem: str, max_bytes: int) -> None:
        self.outputs = outputs
        self.directory = directory
        self.stem = stem
        self.max_bytes = max_bytes
        self.parts: list[tuple[Path, int, int]] = []  # temp name, lines, bytes
        self._handle: BinaryIO | None = None

    def write(self, line: bytes) -> tuple[int, int]:
        """Append one line (its bytes, newline included: formats/lines.py `dump_line`); returns
        (part number, 1-based line number within the part)."""
        if len(line) > self.max_bytes:
            raise ValueError(f"one line is {len(line)} bytes, over the {self.max_bytes} limit")
        if self._handle is None or self.parts[-1][2] + len(line) > self.max_bytes:
            path = self.directory / f"{self.stem}-{len(self.parts) + 1:04d}.jsonl"
            self._handle = self.outputs.open(path)
            self.parts.append((path, 0, 0))
        self._handle.write(line)
        path, lines, size = self.parts[-1]
        self.parts[-1] = (path, lines + 1, size + len(line))
        return len(self.parts), lines + 1

    def final_names(self) -> list[Path]:
        """The names the parts get: a lone part drops its number."""
        if len(self.parts) == 1:
            return [self.directory / f"{self.stem}.jsonl"]
        return [p for p, _, _ in self.parts]

    def rename_single_part(self) -> None:
        """Give a lone part its plain name (call before commit)."""
        if len(self.parts) != 1:
            return
        numbered, lines, size = self.parts[0]
        single = self.directory / f"{self.stem}.jsonl"
        self.outputs.retarget(numbered, single)
        self.parts[0] = (single, lines, size)
