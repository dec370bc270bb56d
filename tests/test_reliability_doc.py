"""docs/reliability.md is what the suite's fault_matrix markers give, and every row is real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.reliability import AREAS, DOC, REGENERATE, ROOT, Row, _Collector, parse, render


@pytest.fixture(scope="module")
def suite() -> dict[str, Any]:
    """The marked rows and every test name, from a collection of the whole suite (a process)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_XDIST_WORKER"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_reliability_page_is_what_the_suite_generates(suite: dict[str, Any]) -> None:
    rows = [Row(**row) for row in suite["rows"]]
    current = DOC.read_text(encoding="utf-8") if DOC.is_file() else ""
    assert current == render(rows), f"docs/reliability.md is out of date: run `{REGENERATE}`"


def test_every_row_names_a_test_of_the_suite_and_an_outcome(suite: dict[str, Any]) -> None:
    rows = parse(DOC.read_text(encoding="utf-8"))
    assert rows, "docs/reliability.md lists no fault"
    tests = set(suite["tests"])
    for row in rows:
        assert row.area in AREAS, row
        assert row.test in tests, f"{row.test} is not a test of the suite: run `{REGENERATE}`"
        assert row.fault and row.outcome, row


def test_page_round_trips_through_its_tables() -> None:
    rows = [
        Row("S3", "a | pipe", "tests/test_x.py::test_a", "kept \\ as is"),
        Row("Secrets", "leak", "tests/test_y.py::test_b", "none"),
    ]
    assert parse(render(rows)) == rows


@pytest.mark.parametrize(
    "mark",
    [
        pytest.mark.fault_matrix(area="Disk", fault="full", outcome="reported"),
        pytest.mark.fault_matrix(area="S3", fault="503"),
        pytest.mark.fault_matrix(area="S3", fault=" ", outcome="retried"),
    ],
    ids=["unknown-area", "no-outcome", "blank-fault"],
)
def test_a_malformed_marker_is_refused_by_name(mark: pytest.MarkDecorator) -> None:
    collector = _Collector()
    assert collector._row("tests/test_x.py::test_y", mark.mark) is None
    assert [p.split(":", 1)[0] for p in collector.problems] == ["tests/test_x.py"]
