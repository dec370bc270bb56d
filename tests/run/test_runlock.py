"""One writer per output folder and per shop: real processes hold the lock, bulkimg is refused."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import orjson
import pytest

from bulkimg.config import load_settings
from bulkimg.demo.run import LocalS3
from bulkimg.demo.samples import SampleData
from bulkimg.run.lock import RunLockedError, lock_paths, writer_lock
from tests.helpers.cli import bulkimg, env_for
from tests.helpers.lock import lock_held

pytestmark = pytest.mark.slow  # the lock is tested between real processes


def killed_holder(output_dir: Path) -> int:
    """A process took the lock and was SIGKILLed holding it; its pid."""
    with lock_held(output_dir, "run") as holder:
        holder.send_signal(signal.SIGKILL)
        holder.wait(30)
        return holder.pid


WRITERS = [
    ["build", "--all", "--catalog", "x.csv", "--bucket", "b"],
    ["submit", "--wait"],
    ["retry", "failures.jsonl"],
    ["run", "--all"],
    ["reconcile"],
    ["preview"],
    ["plan", "--against-shop"],
]


@pytest.mark.fault_matrix(
    area="Operator",
    fault="a second bulkimg command that writes (build, submit, retry, run, reconcile, preview,"
    " plan --against-shop) while another process holds the output folder's lock",
    outcome="refused at once: one line naming the holder (pid, host, command, start time), exit 2,"
    " nothing written",
)
@pytest.mark.parametrize("args", WRITERS, ids=[a[0] for a in WRITERS])
def test_a_second_writer_is_refused_naming_the_holder(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "output"
    out.mkdir()
    (out / "plan.jsonl").write_bytes(b"")
    (tmp_path / "failures.jsonl").write_bytes(b"")
    env = {"SHOPIFY_SHOP": "http://127.0.0.1:9", "SHOPIFY_ACCESS_TOKEN": "t", "AWS_S3_BUCKET": "b"}
    with lock_held(out) as holder:
        before = sorted(p.name for p in out.iterdir())
        result = bulkimg(tmp_path, *args, env=env)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"bulkimg.lock is held by pid {holder.pid} on {socket.gethostname()}" in lines[0]
    assert "(bulkimg submit --wait, since 20" in lines[0]
    assert sorted(p.name for p in out.iterdir()) == before


def test_the_shops_lock_is_taken_too(tmp_path: Path) -> None:
    """Two output folders, one state file: the second writer is refused by the shop's lock."""
    with lock_held(tmp_path / "output"):
        result = bulkimg(
            tmp_path, "preview", "--output-dir", "elsewhere",
            env={"BULKIMG_STATE_FILE": "output/state.sqlite"},
        )  # fmt: skip
    assert result.returncode == 2
    assert "state.sqlite.lock is held by pid" in result.stderr


def test_nested_use_in_one_process_does_not_deadlock_and_releases_at_the_end(
    tmp_path: Path,
) -> None:
    settings = load_settings({"output_dir": tmp_path / "out"}, env_file=None)
    with writer_lock(settings, "run"), writer_lock(settings, "build"):
        holder = orjson.loads(lock_paths(settings)[0].read_bytes())
        assert (holder["pid"], holder["command"]) == (os.getpid(), "run")
    # Released and emptied: another process takes it.
    assert all(path.read_bytes() == b"" for path in lock_paths(settings))
    with (
        lock_held(tmp_path / "out"),
        pytest.raises(RunLockedError, match="held by pid"),
        writer_lock(settings, "build"),
    ):
        pass


@pytest.mark.fault_matrix(
    area="Operator",
    fault="the lock's holder was SIGKILLed (its lock file left naming it, on this host)",
    outcome="the next command takes it over and says so in one line; it runs, exit 0, and"
    " leaves the lock empty",
)
def test_a_lock_left_by_a_killed_process_of_this_host_is_taken_over(
    tmp_path: Path, s3_server: LocalS3, sample: SampleData
) -> None:
    bucket = "lock-stale"
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    sample.upload(client, bucket)
    dead = killed_holder(tmp_path / "output")
    assert orjson.loads((tmp_path / "output" / "bulkimg.lock").read_bytes())["pid"] == dead
    catalog = sample.write_csv(tmp_path / "nav_items.csv")
    env = env_for(s3_server, bucket, catalog)
    result = bulkimg(tmp_path, "build", "--group-ids", "LGD-101792", env=env)
    assert result.returncode == 0, result.stderr
    assert f"took over the lock left by pid {dead} on {socket.gethostname()}" in result.stderr
    assert (tmp_path / "output" / "bulkimg.lock").read_bytes() == b""
    assert (tmp_path / "output" / "productset.jsonl").is_file()


@pytest.mark.fault_matrix(
    area="Operator",
    fault="a lock left by a process of another host (a crash there; flock may not reach it)",
    outcome="refused, exit 2, naming that host and `bulkimg unlock`; `bulkimg unlock` clears it"
    " (and refuses to clear a lock a live process holds)",
)
def test_a_lock_left_on_another_host_needs_unlock(tmp_path: Path) -> None:
    out = tmp_path / "output"
    out.mkdir()
    (out / "plan.jsonl").write_bytes(b"")
    left = {"pid": 4242, "host": "night-box", "command": "run", "started_at": "2026-12-01T01:30Z"}
    (out / "bulkimg.lock").write_bytes(orjson.dumps(left))
    refused = bulkimg(tmp_path, "preview")
    assert refused.returncode == 2
    assert "left by pid 4242 on night-box (bulkimg run, since 2026-12-01T01:30Z)" in refused.stderr
    assert "`bulkimg unlock`" in refused.stderr
    cleared = bulkimg(tmp_path, "unlock")
    assert cleared.returncode == 0, cleared.stderr
    assert "left by pid 4242 on night-box" in cleared.stdout
    assert bulkimg(tmp_path, "preview").returncode == 0
    with lock_held(out) as holder:
        live = bulkimg(tmp_path, "unlock")
    assert live.returncode == 2
    assert f"held by pid {holder.pid}" in live.stderr and "not stale" in live.stderr


def test_a_lock_file_of_an_earlier_version_is_taken_over(tmp_path: Path) -> None:
    """Earlier versions left "<pid> <time>" in output/state.sqlite.lock after every run."""
    out = tmp_path / "output"
    out.mkdir()
    (out / "state.sqlite.lock").write_text("999999 2026-11-30T01:30:00Z\n")
    (out / "plan.jsonl").write_bytes(b"")
    result = bulkimg(tmp_path, "preview")
    assert result.returncode == 0, result.stderr
    assert "took over the lock left by pid 999999" in result.stderr
