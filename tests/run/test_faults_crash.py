"""Fault matrix, Crash: `bulkimg submit --wait` killed (SIGKILL) at each step, then run again.

Black-box kill points: the sandbox holds one request with a `delay` rule, the test kills the
process as soon as the shop has seen that request (`faults.seen`), and the held request then
completes on the shop with nobody listening — the worst case (e.g. an operation started whose
id bulkimg never learnt). The second run must resume: no file submitted twice, no image
uploaded twice, every group accounted for, no secret in any output, log or message.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from bulkimg.config import Settings
from bulkimg.demo.run import LocalS3
from bulkimg.formats.run import Phase, RunStore, Step
from bulkimg.sandbox import FaultRule, SandboxShop
from bulkimg.sandbox.faults import Route
from tests.helpers.env import CANARY_KEY_ID, CANARY_SECRET, CANARY_TOKEN, SHOP_TOKEN
from tests.helpers.faultbuild import (
    GROUPS,
    all_done,
    assert_accounted,
    copy_build,
    planned_uploads,
)
from tests.helpers.fixtures import MakeSettings
from tests.helpers.shop import mutation_operations

HOLD = 3.0  # seconds the shop holds the request the process is killed in
_UNREDACTED = re.compile(r"(?i)x-amz-(?:signature|credential|security-token)=(?!REDACTED)")


def environment(built: Path, s3_server: LocalS3, shop_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BULKIMG_"))}
    env.update(
        AWS_ENDPOINT_URL_S3=s3_server.endpoint_url,
        AWS_S3_BUCKET=(built / "bucket").read_text(),
        AWS_ACCESS_KEY_ID=CANARY_KEY_ID,
        AWS_SECRET_ACCESS_KEY=CANARY_SECRET,
        AWS_SESSION_TOKEN=CANARY_TOKEN,
        BULKIMG_CATALOG=str(built / "nav_items.csv"),
        SHOPIFY_SHOP=shop_url,
        SHOPIFY_ACCESS_TOKEN=SHOP_TOKEN,
        BULKIMG_POLL_INTERVAL="0.05",
        BULKIMG_POLL_MAX_INTERVAL="0.2",
        BULKIMG_MEDIA_WAIT_SECONDS="15",
    )
    return env


def submit_wait(cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "bulkimg", "--log-json", "submit", "--wait"]
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def hold(shop: SandboxShop, route: Route, operation_name: str | None, nth: int) -> None:
    """Hold the nth request to `route` (and `operation_name`) for HOLD seconds."""
    if nth > 1:  # let the first ones through untouched
        shop.faults.add(FaultRule(route, operation_name=operation_name, count=nth - 1))
    shop.faults.add(FaultRule(route, operation_name=operation_name, delay=HOLD, count=1))


def kill_when_seen(
    process: subprocess.Popen[str],
    shop: SandboxShop,
    route: Route,
    operation_name: str | None,
    nth: int,
) -> str:
    deadline = time.monotonic() + 90
    while shop.faults.seen(route, operation_name) < nth:
        if process.poll() is not None or time.monotonic() > deadline:
            _, err = process.communicate()
            pytest.fail(f"never reached the kill point (exit {process.returncode}): {err[-2000:]}")
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    out, err = process.communicate(timeout=30)
    return out + err


# Killed while polling: tests/run/test_submit.py. Each point costs two interpreter starts (~2 s CPU
# each on CI), so the staged upload POSTs (a plain re-upload on resume) are left out.
KILL_POINTS = [
    pytest.param("graphql", "BulkOperationRunMutation", 1, id="phase1-run-mutation-answer-lost"),
    pytest.param("result_download", None, 1, id="phase1-result-download"),
    pytest.param("graphql", "BulkOperationRunQuery", 1, id="export-run-query-answer-lost"),
    pytest.param("graphql", "BulkOperationRunMutation", 2, id="phase2-run-mutation-answer-lost"),
]


@pytest.mark.fault_matrix(
    area="Crash",
    fault="SIGKILL of submit --wait at each step: after the staged upload with"
    " bulkOperationRunMutation in flight, during the result download, with the export query in"
    " flight (phase 2 begins), with phase 2's bulkOperationRunMutation in flight",
    outcome="the next submit --wait resumes: one operation per file, each image uploaded once,"
    " every group done, exit 0, no secret or signature in outputs, logs or messages",
)
@pytest.mark.parametrize(("route", "operation_name", "nth"), KILL_POINTS)
def test_killed_at_each_step_resumes_without_duplicates(
    built: Path,
    tmp_path: Path,
    s3_server: LocalS3,
    shop: SandboxShop,
    shop_url: str,
    make_settings: MakeSettings,
    route: Route,
    operation_name: str | None,
    nth: int,
) -> None:
    copy_build(built, tmp_path)
    env = environment(built, s3_server, shop_url)
    hold(shop, route, operation_name, nth)
    said = kill_when_seen(submit_wait(tmp_path, env), shop, route, operation_name, nth)
    assert RunStore(tmp_path / "output").load().completed_at is None  # killed mid-run

    second = submit_wait(tmp_path, env)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err[-3000:]
    said += out + err

    kinds = [op["id"] for op in mutation_operations(shop_url)]
    assert len(kinds) == 2  # productSet file once, variant-media file once
    assert shop.faults.seen("bulk_mutation") == 2
    settings: Settings = make_settings(
        output_dir=tmp_path / "output", logs_dir=tmp_path / "logs", shopify_shop=shop_url
    )
    assert all_done(assert_accounted(settings, shop, said))
    assert shop.faults.seen("media_fetch") == planned_uploads(settings)
    assert _UNREDACTED.findall(said) == []
    for log in (tmp_path / "logs").glob("*.log"):
        assert _UNREDACTED.findall(log.read_text()) == [], log


@pytest.mark.fault_matrix(
    area="Crash",
    fault="SIGKILL of the nightly `bulkimg run` (reconcile, build, submit) with phase 1's"
    " bulkOperationRunMutation in flight",
    outcome="the next `bulkimg run` resumes the unfinished submit instead of building again: one"
    " operation per file, each image uploaded once, every group done, exit 0, lock released",
)
def test_killed_nightly_run_resumes_without_duplicates(
    built: Path,
    tmp_path: Path,
    s3_server: LocalS3,
    shop: SandboxShop,
    shop_url: str,
    make_settings: MakeSettings,
) -> None:
    env = environment(built, s3_server, shop_url)

    def nightly() -> subprocess.Popen[str]:
        command = [sys.executable, "-m", "bulkimg", "--log-json", "run", "--group-ids", *GROUPS]
        return subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    hold(shop, "graphql", "BulkOperationRunMutation", 1)
    said = kill_when_seen(nightly(), shop, "graphql", "BulkOperationRunMutation", 1)
    assert RunStore(tmp_path / "output").load().completed_at is None  # killed mid-submit

    second = nightly()
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err[-3000:]
    said += out + err
    assert "resuming the unfinished submit" in said

    assert len(mutation_operations(shop_url)) == 2  # productSet file once, variant media once
    settings: Settings = make_settings(
        output_dir=tmp_path / "output", logs_dir=tmp_path / "logs", shopify_shop=shop_url
    )
    assert all_done(assert_accounted(settings, shop, said))
    assert shop.faults.seen("media_fetch") == planned_uploads(settings)
    assert _UNREDACTED.findall(said) == []


def bulkimg_cli(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "bulkimg", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.fault_matrix(
    area="Operator",
    fault="`submit --wait` run again after the run finished (the documented recovery after a"
    " kill that landed after the end)",
    outcome="says the build was already submitted (run id, start time), exit 0, sends nothing"
    " and uploads nothing; `--again` starts a new run that uploads nothing either",
)
def test_submit_again_after_a_finished_run_sends_nothing(
    built: Path, tmp_path: Path, s3_server: LocalS3, shop: SandboxShop, shop_url: str
) -> None:
    copy_build(built, tmp_path)
    env = environment(built, s3_server, shop_url)
    first = bulkimg_cli(tmp_path, env, "submit", "--wait")
    assert first.returncode == 0, first.stderr[-2000:]
    run_id = RunStore(tmp_path / "output").load().run_id
    operations, fetched = len(mutation_operations(shop_url)), shop.faults.seen("media_fetch")
    queries = shop.faults.seen("bulk_query")

    again = bulkimg_cli(tmp_path, env, "submit", "--wait")
    assert again.returncode == 0, again.stderr[-2000:]
    assert "already submitted" in again.stdout and run_id in again.stdout
    assert shop.faults.seen("bulk_query") == queries  # not even an export
    assert RunStore(tmp_path / "output").load().run_id == run_id

    forced = bulkimg_cli(tmp_path, env, "submit", "--wait", "--again")
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert RunStore(tmp_path / "output").load().run_id != run_id
    assert shop.faults.seen("media_fetch") == fetched  # every image is already there
    assert len(mutation_operations(shop_url)) == operations


@pytest.mark.fault_matrix(
    area="Operator",
    fault="`build` run while a killed submit is unfinished (it had exported the shop, sent no"
    " line)",
    outcome="the next `submit --wait` closes that run as abandoned and submits the new build:"
    " exit 0, every group done, each image uploaded once",
)
def test_a_build_after_a_killed_submit_that_sent_nothing_does_not_wedge_the_next_submit(
    built: Path,
    tmp_path: Path,
    s3_server: LocalS3,
    shop: SandboxShop,
    shop_url: str,
    make_settings: MakeSettings,
) -> None:
    copy_build(built, tmp_path)
    env = environment(built, s3_server, shop_url)
    hold(shop, "graphql", "BulkOperationRunQuery", 1)
    kill_when_seen(submit_wait(tmp_path, env), shop, "graphql", "BulkOperationRunQuery", 1)
    killed = RunStore(tmp_path / "output").load()
    assert killed.completed_at is None and not killed.resolved

    rebuilt = bulkimg_cli(tmp_path, env, "build", "--group-ids", *GROUPS)
    assert rebuilt.returncode in (0, 1), rebuilt.stderr[-2000:]
    second = submit_wait(tmp_path, env)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err[-3000:]
    assert f"run {killed.run_id} sent nothing" in out + err
    settings: Settings = make_settings(
        output_dir=tmp_path / "output", logs_dir=tmp_path / "logs", shopify_shop=shop_url
    )
    assert all_done(assert_accounted(settings, shop, out + err))
    assert shop.faults.seen("media_fetch") == planned_uploads(settings)


@pytest.mark.fault_matrix(
    area="Operator",
    fault="`bulkimg cancel` of a run whose productSet operation is running (its submit killed)",
    outcome="the operation is cancelled on the shop and polled to CANCELED; lines that ran are"
    " done, the rest are retryable failures; exit 3; `retry` then finishes every group, each"
    " image uploaded once",
)
@pytest.mark.parametrize("shop", [{"bulk_line_delay": 0.4}], indirect=True)
def test_cancel_stops_the_live_operation_and_retry_finishes_the_rest(
    built: Path,
    tmp_path: Path,
    s3_server: LocalS3,
    shop: SandboxShop,
    shop_url: str,
    make_settings: MakeSettings,
) -> None:
    copy_build(built, tmp_path)
    env = environment(built, s3_server, shop_url)
    first = submit_wait(tmp_path, env)
    store = RunStore(tmp_path / "output")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ops = store.load().ops(Phase.PRODUCT_SET) if store.exists() else []
        if ops and ops[0].step is Step.SUBMITTED:
            break
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)

    cancelled = bulkimg_cli(tmp_path, env, "cancel")
    assert cancelled.returncode == 3, cancelled.stderr[-2000:]
    assert "bulkimg retry" in cancelled.stdout
    state = store.load()
    assert state.cancelled_at and state.completed_at
    assert [op["status"] for op in mutation_operations(shop_url)] == ["CANCELED"]
    failures = [orjson.loads(line) for line in
                (tmp_path / "output" / "failures.jsonl").read_bytes().splitlines()]  # fmt: skip
    assert failures and all(f["retryable"] for f in failures)
    again = bulkimg_cli(tmp_path, env, "cancel")
    assert (again.returncode, again.stdout.strip()) == (0, "no unfinished run: nothing to cancel")

    retried = bulkimg_cli(tmp_path, env, "retry", "output/failures.jsonl")
    assert retried.returncode == 0, retried.stderr[-3000:]
    settings: Settings = make_settings(
        output_dir=tmp_path / "output", logs_dir=tmp_path / "logs", shopify_shop=shop_url
    )
    assert all_done(assert_accounted(settings, shop, cancelled.stdout + retried.stdout))
    assert shop.faults.seen("media_fetch") == planned_uploads(settings)


@pytest.mark.fault_matrix(
    area="Operator",
    fault="output/run.json damaged (truncated by a full disk, edited by hand)",
    outcome="every command says in one line (exit 2) that `bulkimg cancel` sets it aside; cancel"
    " does once the shop runs no bulk operation; then `submit --wait --again` uploads nothing"
    " already there; `bulkimg status` names the next command at every step",
)
def test_a_damaged_run_file_has_a_way_forward(
    built: Path, tmp_path: Path, s3_server: LocalS3, shop: SandboxShop, shop_url: str
) -> None:
    copy_build(built, tmp_path)
    env = environment(built, s3_server, shop_url)
    assert bulkimg_cli(tmp_path, env, "submit", "--wait").returncode == 0
    status = bulkimg_cli(tmp_path, env, "status")
    assert "next: nothing to do" in " ".join(status.stdout.split())
    fetched = shop.faults.seen("media_fetch")
    run_file = tmp_path / "output" / "run.json"
    run_file.write_bytes(run_file.read_bytes()[:100])  # cut short

    for command in (["submit", "--wait"], ["status"], ["run", "--group-ids", *GROUPS]):
        refused = bulkimg_cli(tmp_path, env, *command)
        assert refused.returncode == 2, (command, refused.stderr[-2000:])
        (line,) = refused.stderr.strip().splitlines()
        assert "not a valid run file" in line and "`bulkimg cancel` sets it aside" in line
    cancelled = bulkimg_cli(tmp_path, env, "cancel")
    assert cancelled.returncode == 0, cancelled.stderr[-2000:]
    assert "set aside" in cancelled.stdout and not run_file.exists()
    assert list((tmp_path / "output").glob("run.json.damaged-*"))

    again = bulkimg_cli(tmp_path, env, "submit", "--wait", "--again")
    assert again.returncode == 0, again.stderr[-2000:]
    assert shop.faults.seen("media_fetch") == fetched
    status = bulkimg_cli(tmp_path, env, "status")
    assert "next: nothing to do" in " ".join(status.stdout.split())


# Two trials in CI (the suite's time is capped); more seeds: BULKIMG_KILL_SEEDS="1 2 3 ...".
KILL_SEEDS = [int(n) for n in os.environ.get("BULKIMG_KILL_SEEDS", "").split()] or [11, 23]
RANDOM_KILLS = [
    pytest.param(command, seed, id=f"{command[0]}-seed{seed}")
    for number, seed in enumerate(KILL_SEEDS)
    for command in (
        [["submit", "--wait"]] if number % 2 == 0 else [["run", "--group-ids", *GROUPS]]
    )
]


@pytest.mark.slow
@pytest.mark.fault_matrix(
    area="Operator",
    fault="random-kill trial: SIGKILL of `submit --wait` or `run` at a random moment (seeded),"
    " then the same command repeated until it exits 0, killed again at random while it runs",
    outcome="in every trial each image is uploaded exactly once (the shop's downloads equal the"
    " plan's uploads), every group done, the repeats after the end send nothing",
)
@pytest.mark.parametrize(("command", "seed"), RANDOM_KILLS)
@pytest.mark.parametrize("shop", [{"bulk_line_delay": 0.05}], indirect=True)
def test_random_kills_then_repeating_the_command_upload_each_image_once(
    built: Path,
    tmp_path: Path,
    s3_server: LocalS3,
    shop: SandboxShop,
    shop_url: str,
    make_settings: MakeSettings,
    command: list[str],
    seed: int,
) -> None:
    import random

    rng = random.Random(seed)
    copy_build(built, tmp_path)
    env = environment(built, s3_server, shop_url)
    settings: Settings = make_settings(
        output_dir=tmp_path / "output", logs_dir=tmp_path / "logs", shopify_shop=shop_url
    )
    uploads = planned_uploads(settings)  # the build's: what the shop must download, once each
    said = ""
    for kill in (True, True, False):  # two kills at random moments, then one run to its end
        process = subprocess.Popen(
            [sys.executable, "-m", "bulkimg", "--log-json", *command], cwd=tmp_path, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        if kill:
            time.sleep(rng.uniform(0.3, 4.0))
            process.send_signal(signal.SIGKILL)
        out, err = process.communicate(timeout=180)
        said += out + err
        if not kill:
            assert process.returncode == 0, err[-3000:]
    assert all_done(assert_accounted(settings, shop, said))
    assert shop.faults.seen("media_fetch") == uploads
    again = bulkimg_cli(tmp_path, env, *command)
    assert again.returncode == 0, again.stderr[-2000:]
    assert shop.faults.seen("media_fetch") == uploads
