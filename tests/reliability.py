"""The fault matrix: every test marked `fault_matrix(area, fault, outcome)`, as docs/reliability.md.

    python -m tests.reliability            print the page the suite gives
    python -m tests.reliability --write    write it to docs/reliability.md
    python -m tests.reliability --check    exit 1 when docs/reliability.md differs
    python -m tests.reliability --json     the rows and every collected test, as JSON

The rows come from pytest's own collection of `tests/` (run in this process with a small
plugin), so the page lists exactly the marked tests of the suite.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterable
from contextlib import redirect_stdout
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
MARKER = "fault_matrix"
# The order of the page's sections; a marker naming another area is an error.
AREAS = ("S3", "Shopify", "Crash", "Operator", "Soak", "Input", "Images", "Secrets")
REGENERATE = "python -m tests.reliability --write"

INTRO = f"""\
# Reliability: the fault matrix

bulkimg promises, whatever S3, Shopify, the machine or the input does:

- **Nothing lost, nothing duplicated.** Every catalog row ends in exactly one of: done (written,
  then on the shop), failed and retryable (deferred by the build, or in `failures.jsonl`), or
  missing (in the missing-images log, with the reason).
- **Nothing leaked.** No credential, token or presigned-URL signature appears in any log,
  report, message or output other than the productSet JSONL and the preview, which must carry
  presigned URLs.
- **Bad input never crashes the build**: a bad row or file is reported and the run goes on.

Each row below is a test of the suite that injects the fault and asserts the outcome. CI must be
green for a change to land, so every row listed here holds on the main branch.

This page is generated from the tests' `fault_matrix(area, fault, outcome)` markers; do not edit
it by hand. After adding or changing a marked test, run `{REGENERATE}`
(`tests/test_reliability_doc.py` fails while the page is out of date).
"""


@dataclass(frozen=True, slots=True)
class Row:
    """One marked test: the fault it injects and the outcome it asserts."""

    area: str
    fault: str
    test: str  # file::name (parameters left out)
    outcome: str


class MatrixError(Exception):
    """A fault_matrix marker is malformed."""


class _Collector:
    """pytest plugin: remembers the collected tests and their fault_matrix markers."""

    def __init__(self) -> None:
        self.tests: list[str] = []
        self.rows: list[Row] = []
        self.problems: list[str] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            test = test_name(item.nodeid)
            self.tests.append(test)
            for mark in item.iter_markers(MARKER):
                row = self._row(test, mark)
                if row is not None:
                    self.rows.append(row)

    def _row(self, test: str, mark: pytest.Mark) -> Row | None:
        values = dict(zip(("area", "fault", "outcome"), mark.args, strict=False))
        values.update(mark.kwargs)
        text = {k: " ".join(str(values.get(k, "")).split()) for k in ("area", "fault", "outcome")}
        if set(values) != {"area", "fault", "outcome"} or not all(text.values()):
            self.problems.append(f"{test}: needs non-empty area, fault and outcome, got {values}")
            return None
        if text["area"] not in AREAS:
            self.problems.append(f"{test}: unknown area {text['area']!r} (one of {AREAS})")
            return None
        return Row(text["area"], text["fault"], test, text["outcome"])


def test_name(nodeid: str) -> str:
    """`tests/test_x.py::test_y[param]` -> `tests/test_x.py::test_y`."""
    return nodeid.split("[", 1)[0]


def collect(root: Path = ROOT) -> tuple[list[Row], list[str]]:
    """The rows of the matrix and the names of every test, from pytest's collection of tests/."""
    collector = _Collector()
    args = [
        "--collect-only",
        "-q",
        "--assert=plain",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(root),
    ]
    with redirect_stdout(io.StringIO()) as out:
        code = pytest.main([*args, str(root / "tests")], plugins=[collector])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise MatrixError(f"pytest could not collect the suite (exit {code}):\n{out.getvalue()}")
    if collector.problems:
        raise MatrixError("bad fault_matrix markers:\n" + "\n".join(collector.problems))
    return unique(collector.rows), sorted(set(collector.tests))


def unique(rows: Iterable[Row]) -> list[Row]:
    """Rows in collection order, once each (a parametrized test gives one row)."""
    return list(dict.fromkeys(rows))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render(rows: list[Row]) -> str:
    """docs/reliability.md: the intro, then one table per area, in AREAS order."""
    parts = [INTRO]
    for area in AREAS:
        mine = [r for r in rows if r.area == area]
        if not mine:
            continue
        parts.append(f"\n## {area}\n\n| fault | test | observed outcome |\n| --- | --- | --- |\n")
        parts.extend(f"| {_cell(r.fault)} | `{r.test}` | {_cell(r.outcome)} |\n" for r in mine)
    return "".join(parts)


def parse(page: str) -> list[Row]:
    """The rows of a rendered page (for checking the committed one)."""
    rows: list[Row] = []
    area = ""
    for line in page.splitlines():
        if line.startswith("## "):
            area = line[3:].strip()
        elif line.startswith("| ") and not line.startswith(("| fault |", "| --- |")):
            cells = [c.strip().replace("\\|", "|") for c in _split_cells(line)]
            if len(cells) == 3:
                rows.append(Row(area, cells[0], cells[1].strip("`"), cells[2]))
    return rows


def _split_cells(line: str) -> list[str]:
    """The cells of a table line, honouring escaped pipes."""
    cells, current, escaped = [], "", False
    for char in line.strip()[1:-1]:
        if char == "|" and not escaped:
            cells.append(current)
            current = ""
        else:
            current += char
        escaped = char == "\\" and not escaped
    cells.append(current)
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"write {DOC.relative_to(ROOT)}")
    group.add_argument("--check", action="store_true", help="exit 1 when the page is stale")
    group.add_argument("--json", action="store_true", help="rows and collected tests as JSON")
    args = parser.parse_args(argv)
    try:
        rows, tests = collect()
    except MatrixError as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"rows": [asdict(r) for r in rows], "tests": tests}, indent=1))
        return 0
    page = render(rows)
    if args.write:
        DOC.write_text(page, encoding="utf-8")
        print(f"wrote {DOC.relative_to(ROOT)} ({len(rows)} rows)")
        return 0
    if args.check:
        current = DOC.read_text(encoding="utf-8") if DOC.is_file() else ""
        if current != page:
            print(f"{DOC.relative_to(ROOT)} is out of date: run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
