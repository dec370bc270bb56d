"""Exit codes as documented (README, docs/operations.md), per command, run as the CLI.

    0 done; 1 some lines or groups failed (retryable ones in failures.jsonl); 2 usage or
    configuration (one line on stderr); 3 a bulk operation failed or was cancelled.

Each case runs `bulkimg` commands in this process (`bulkimg.cli.main`, as a user runs them)
on a copy of the fault matrix's build (tests/run/test_faults_shop.py), against the sandbox shop and
moto's S3 server over loopback, with the sandbox's fault rules giving each code. After every
command the manifest and failures it leaves are read with bulkimg's own models. `build`'s 1
(groups deferred: S3 could not read them) is tests/s3/test_s3_faults.py's
test_cli_build_exits_1_and_defers_the_group_s3_cannot_read, through its fault proxy.
"""

from __future__ import annotations

import io
import os
import socket
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from bulkimg.cli import main
from bulkimg.config import Settings, env_name
from bulkimg.demo.run import LocalS3
from bulkimg.formats.failures import FailureRecord, LineError, failure_of, read_failures
from bulkimg.formats.jsonl import dump_model
from bulkimg.formats.manifest import ManifestRecord, read_manifest
from bulkimg.sandbox import FaultRule, SandboxShop
from tests.helpers.env import CANARY_KEY_ID, CANARY_SECRET, CANARY_TOKEN, SHOP_TOKEN
from tests.helpers.faultbuild import GROUPS, settings_over_build
from tests.helpers.fixtures import MakeSettings

SETTINGS_FIELDS = ("catalog", "aws_s3_bucket", "aws_endpoint_url_s3", "aws_region", "output_dir",
                   "logs_dir", "cache_dir", "shopify_shop", "poll_interval", "poll_max_interval",
                   "media_wait_seconds", "shopify_timeout")  # fmt: skip
DEAD = "dead"  # stands for a loopback address where nothing listens
ONE_GROUP = GROUPS[0]


@dataclass(frozen=True)
class Step:
    """One command, what the shop does wrong meanwhile, and the exit code it must give."""

    args: tuple[str, ...]
    code: int
    faults: tuple[FaultRule, ...] = ()
    env: dict[str, str | None] = field(default_factory=dict)  # None: the variable is unset
    retryable: bool = False  # failures.jsonl must hold a retryable line afterwards
    says: str = ""  # in stdout or stderr


REFUSED_STAGING = FaultRule(
    "graphql", operation_name="StagedUploadsCreate", user_error="refused", count=1
)
SKIPPED_LINES = FaultRule("bulk_mutation", skip_lines=(0, 3), count=1)
FAILED_EXPORT = FaultRule("bulk_query", fail_after_lines=0, count=1)
NO_TOKEN: dict[str, str | None] = {"SHOPIFY_ACCESS_TOKEN": None}
ELSEWHERE = ("--output-dir", "elsewhere")  # a folder with no build and no run

CASES = [
    pytest.param([
        Step(("check",), 0, says="ok   presigned URL"),
        Step(("plan",), 0),
        Step(("plan", "--against-shop"), 0),
        Step(("submit", "--wait"), 0),
        Step(("status",), 0, says="next:"),
        Step(("cancel",), 0, says="nothing to cancel"),
        Step(("reconcile",), 0, says="state rebuilt"),
        Step(("build", "--group-ids", ONE_GROUP), 0),
        Step(("run", "--group-ids", ONE_GROUP), 0),
    ], {}, id="0-every-command"),
    pytest.param([
        Step(("submit", "--wait"), 1, (SKIPPED_LINES,), retryable=True),
        Step(("retry", "output/failures.jsonl"), 0),
        Step(("run", "--all"), 1, (SKIPPED_LINES,), retryable=True),
    ], {}, id="1-lines-failed-submit-run-then-retry-0"),
    pytest.param([
        Step(("submit", "--wait"), 3, (REFUSED_STAGING,), retryable=True),
        Step(("retry", "output/failures.jsonl"), 3, (REFUSED_STAGING,), retryable=True),
        Step(("retry", "output/failures.jsonl"), 0),
    ], {}, id="3-bulk-operation-refused-submit-retry"),
    pytest.param([
        Step(("reconcile",), 3, (FAILED_EXPORT,), says="export ended FAILED"),
        Step(("run", "--all"), 3, (FAILED_EXPORT,), says="export ended FAILED"),
    ], {}, id="3-export-failed-reconcile-run"),
    pytest.param([
        Step(("submit",), 0, says="submitted;"),
        Step(("cancel",), 3, retryable=True, says="bulkimg retry"),
        Step(("status",), 0),
    ], {"bulk_line_delay": 0.4}, id="3-cancelled"),
    pytest.param([
        Step(("build",), 2, says="give either --all or --group-ids"),
        Step(("build", "--all"), 2, env={"BULKIMG_CATALOG": None}, says="BULKIMG_CATALOG"),
        Step(("plan", *ELSEWHERE), 2, says="run `bulkimg build` first"),
        Step(("submit", "--limit", "3"), 2, says="--limit needs --wait"),
        Step(("submit", "--wait"), 2, env=NO_TOKEN, says="SHOPIFY_ACCESS_TOKEN"),
        Step(("status", *ELSEWHERE), 2, says="nothing has been submitted"),
        Step(("cancel",), 2, env={"SHOPIFY_SHOP": None}, says="SHOPIFY_SHOP"),
        Step(("retry", "output/failures.jsonl"), 2, says="failures.jsonl not found"),
        Step(("run",), 2, says="give either --all or --group-ids"),
        Step(("reconcile",), 2, env=NO_TOKEN, says="SHOPIFY_ACCESS_TOKEN"),
        Step(("check",), 2, env={"AWS_S3_BUCKET": None}, says="AWS_S3_BUCKET is not set"),
    ], {}, id="2-usage-and-configuration"),
    pytest.param([
        Step(("submit", "--wait"), 2, env={"SHOPIFY_SHOP": DEAD}),
        Step(("plan", "--against-shop"), 2, env={"SHOPIFY_SHOP": DEAD}),
        Step(("reconcile",), 2, env={"SHOPIFY_SHOP": DEAD}),
        Step(("run", "--all"), 2, env={"SHOPIFY_SHOP": DEAD}),
        Step(("status",), 2, env={"SHOPIFY_SHOP": DEAD}, says="nothing has been submitted"),
        Step(("check",), 2, env={"SHOPIFY_SHOP": DEAD}, says="FAIL shop"),
        Step(("submit", "--wait"), 0),  # the dead address left nothing behind that blocks
    ], {}, id="2-dead-shop-address"),
]  # fmt: skip


@pytest.fixture
def settings(
    built: Path, tmp_path: Path, make_settings: MakeSettings, s3_server: LocalS3, shop_url: str
) -> Settings:
    """Settings over a copy of the fault matrix's build, for this test's sandbox shop."""
    return settings_over_build(built, tmp_path, make_settings, s3_server, shop_url)


def environment(settings: Settings) -> dict[str, str]:
    """`settings` as the environment a user sets (the canary credentials)."""
    env = {env_name(f): str(getattr(settings, f)) for f in SETTINGS_FIELDS}
    env |= {"AWS_ACCESS_KEY_ID": CANARY_KEY_ID, "AWS_SECRET_ACCESS_KEY": CANARY_SECRET}
    env |= {"AWS_SESSION_TOKEN": CANARY_TOKEN, "SHOPIFY_ACCESS_TOKEN": SHOP_TOKEN}
    return env


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str
    seconds: float


def bulkimg(args: tuple[str, ...], env: dict[str, str]) -> Ran:
    """`bulkimg ARGS` in this process with `env` as the environment; what it gave."""
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with mock.patch.dict(os.environ, env), redirect_stdout(out), redirect_stderr(err):
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return Ran(code, out.getvalue(), err.getvalue(), time.monotonic() - started)


def dead_address() -> str:
    """A loopback address where nothing listens (a port bound, then closed)."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{closed.getsockname()[1]}"


def read_outputs(output_dir: Path) -> tuple[list[ManifestRecord], list[FailureRecord]]:
    """The manifest and failures a command left, read with bulkimg's own models."""
    manifest, failures = output_dir / "manifest.jsonl", output_dir / "failures.jsonl"
    return read_manifest(manifest), read_failures(failures)


@pytest.mark.fault_matrix(
    area="Operator",
    fault="every command run as the CLI in the states that give each documented exit code:"
    " done; lines failed (results missing); a bulk operation refused, a failed export, a run"
    " cancelled; usage and configuration errors; a shop address where nothing listens",
    outcome="0 done, 1 retryable lines in failures.jsonl, 2 an error saying what to fix (no"
    " traceback), 3 a failed or cancelled bulk operation (submit, retry, cancel: its lines"
    " retryable); a dead address is exit 2 in under 2 s, one line naming it, and leaves"
    " nothing that blocks the next submit; manifest and failures always read by bulkimg's"
    " own models",
)
@pytest.mark.parametrize(("steps", "shop"), CASES, indirect=["shop"])
def test_each_command_exits_with_the_documented_code(
    steps: list[Step], settings: Settings, shop: SandboxShop
) -> None:
    dead = dead_address()
    base = environment(settings)
    for step in steps:
        for rule in step.faults:
            shop.faults.add(rule)
        env = base | {k: dead if v == DEAD else v for k, v in step.env.items() if v is not None}
        for name in (k for k, v in step.env.items() if v is None):
            env.pop(name)
        ran = bulkimg(step.args, env)
        said = ran.out + ran.err
        assert ran.code == step.code, f"bulkimg {' '.join(step.args)}: {said[-3000:]}"
        assert "Traceback" not in said and step.says in said, said[-3000:]
        manifest, failures = read_outputs(settings.output_dir)
        if step.retryable:
            assert any(f.retryable for f in failures), said[-3000:]
        if step.code == 0 and step.args[0] in ("submit", "retry", "run") and manifest:
            assert {m.status for m in manifest} <= {"done", "missing"}
        if step.env.get("SHOPIFY_SHOP") == DEAD and step.args[0] != "check":  # check: S3 too
            assert ran.seconds < 2, f"{ran.seconds:.1f} s to fail on a dead address"
        if step.env.get("SHOPIFY_SHOP") == DEAD and step.args[0] != "status":  # no run.json
            named = [line for line in said.splitlines() if dead in line]
            assert len(named) == 1 and "nothing listens there" in named[0], said


def test_retry_of_only_non_retryable_failures_exits_1(settings: Settings) -> None:
    """Nothing retryable in the file: nothing sent, exit 1 (the failures stay)."""
    failure = failure_of("product_set", ONE_GROUP, ONE_GROUP.lower(), None, None, None,
                      [LineError(code="INVALID", message="bad")], False)  # fmt: skip
    path = settings.output_dir / "failures.jsonl"
    path.write_bytes(dump_model(failure))
    ran = bulkimg(("retry", str(path)), environment(settings))
    assert ran.code == 1 and "nothing to retry" in ran.out, ran.out + ran.err
    assert [f.retryable for f in read_outputs(settings.output_dir)[1]] == [False]


def test_plan_against_shop_exits_1_when_a_line_would_change_what_bulkimg_does_not_own(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a bug gets there: resolution's own guard (an AssertionError) stands in for one."""

    def guard(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"{ONE_GROUP}: the line would change the product's title")

    monkeypatch.setattr("bulkimg.run.against_shop.resolve_run", guard)
    ran = bulkimg(("plan", "--against-shop"), environment(settings))
    assert ran.code == 1, ran.out + ran.err
    assert "would change what bulkimg does not own" in ran.out and "title" in ran.out


def session_environment(settings: Settings, expires: datetime) -> dict[str, str]:
    """The environment of temporary credentials (STS-style) that expire at `expires`."""
    return environment(settings) | {"AWS_CREDENTIAL_EXPIRATION": expires.isoformat()}


@pytest.mark.fault_matrix(
    area="S3",
    fault="`bulkimg check` with session credentials (AWS_CREDENTIAL_EXPIRATION) expiring in 5"
    " minutes, already expired 10 minutes ago, or lasting 2 hours",
    outcome="one line saying when they expire; exit 2 when they expire before"
    " BULKIMG_SUBMIT_LINK_SECONDS (the least a submitted link must live) or have expired,"
    " the other S3 checks not run; exit 0 when they last",
)
@pytest.mark.parametrize(
    ("minutes", "code", "says"),
    [
        (5, 2, "less than BULKIMG_SUBMIT_LINK_SECONDS (1800 s) from now"),
        (-10, 2, "expired at"),
        (120, 0, "links live until then"),
    ],
    ids=["expiring-in-5-min", "expired", "lasting-2-h"],
)
def test_check_says_when_session_credentials_expire(
    settings: Settings, minutes: int, code: int, says: str
) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=minutes)
    ran = bulkimg(("check",), session_environment(settings, expires))
    assert ran.code == code, ran.out + ran.err
    lines = [line for line in ran.out.splitlines() if "S3 credentials" in line]
    assert len(lines) == 1 and says in lines[0], ran.out
    assert f"{expires.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" in lines[0]
    assert lines[0].startswith("ok" if code == 0 else "FAIL")
    assert ("S3 bucket" in ran.out) == (code == 0)  # the other S3 checks need them
    assert CANARY_SECRET not in ran.out + ran.err and CANARY_TOKEN not in ran.out + ran.err
