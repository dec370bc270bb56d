"""docs/cli.md: every command's `--help`, generated (`python -m tests.cli_reference --write`) and
checked by tests/test_cli_reference.py, so the reference cannot drift from the code."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.testing import CliRunner

from bulkimg.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "cli.md"
REGENERATE = "python -m tests.cli_reference --write"
WIDTH = 100


def _help(args: list[str]) -> str:
    result = CliRunner().invoke(cli, [*args, "--help"], terminal_width=WIDTH, prog_name="bulkimg")
    if result.exit_code != 0:
        raise RuntimeError(f"bulkimg {' '.join(args)} --help failed: {result.output}")
    return result.output.rstrip() + "\n"


def _commands(group: click.Group, prefix: list[str]) -> list[list[str]]:
    found: list[list[str]] = []
    with click.Context(group) as ctx:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            found.append([*prefix, name])
            if isinstance(command, click.Group):
                found.extend(_commands(command, [*prefix, name]))
    return found


def render() -> str:
    parts = [
        "# Command-line reference\n\n",
        f"Generated from `--help` by `{REGENERATE}`; a test fails when it is out of date.\n",
        "Commands are listed in the order a run uses them.\n\n",
        "## bulkimg\n\n```\n", _help([]), "```\n",
    ]  # fmt: skip
    for args in _commands(cli, []):
        parts += [f"\n## bulkimg {' '.join(args)}\n\n```\n", _help(args), "```\n"]
    return "".join(parts)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        DOC.write_text(render())
        print(f"wrote {DOC.relative_to(ROOT)}")
    else:
        sys.stdout.write(render())
