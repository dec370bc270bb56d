"""docs/cli.md is what `--help` says, and `--help` lists the commands in workflow order."""

from __future__ import annotations

from click.testing import CliRunner

from bulkimg.cli import WORKFLOW, cli
from tests.cli_reference import DOC, REGENERATE, render


def test_the_cli_reference_is_what_help_says() -> None:
    assert DOC.read_text() == render(), f"docs/cli.md is out of date: run `{REGENERATE}`"


def test_help_lists_the_commands_in_the_order_a_run_uses_them() -> None:
    output = CliRunner().invoke(cli, ["--help"], terminal_width=100).output
    lines = output.split("Commands:", 1)[1].splitlines()
    names = [line.split()[0] for line in lines if line.startswith("  ") and line.split()]
    assert names == list(WORKFLOW)
