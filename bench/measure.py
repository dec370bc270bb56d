"""Run a command as a child process and measure it: wall time, CPU time and peak RSS."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import orjson

from bench.s3server import ACCESS_KEY, BUCKET, REGION, SECRET_KEY

# bulkimg settings taken from the bench's own environment into the builds it runs.
PASSED_THROUGH = ("BULKIMG_S3_GET_CLIENT",)


@dataclass(frozen=True, slots=True)
class ProcessRun:
    """One child process: its exit code and what it cost."""

    exit_code: int
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float


def run_measured(
    args: list[str], env: Mapping[str, str], cwd: Path, log: Path, timeout: float = 7200
) -> ProcessRun:
    """Run `args`, stdout and stderr to `log`; peak RSS from the child's own rusage (wait4)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=dict(env), cwd=cwd, stdout=out, stderr=out)  # noqa: S603
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return ProcessRun(
        exit_code=proc.returncode,
        wall_seconds=round(time.monotonic() - started, 3),
        cpu_seconds=round(usage.ru_utime + usage.ru_stime, 3),
        peak_rss_mb=round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
    )


def base_env() -> dict[str, str]:
    """The environment children run with: ours, minus any bulkimg/AWS/Shopify setting."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BULKIMG_", "AWS_", "SHOPIFY_")) and k != "MYSQL_PASSWORD"
    }
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    repo = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH", "")) if p)
    return env


def build_env(endpoint: str, catalog: Path, workdir: Path, cache_dir: Path) -> dict[str, str]:
    """Settings of a `bulkimg build` against the bench's S3 (defaults for everything else)."""
    env = base_env()
    env.update(
        BULKIMG_CATALOG=f"sqlite:///{catalog}",
        AWS_S3_BUCKET=BUCKET,
        AWS_ENDPOINT_URL_S3=endpoint,
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_REGION=REGION,
        BULKIMG_OUTPUT_DIR=str(workdir / "output"),
        BULKIMG_LOGS_DIR=str(workdir / "logs"),
        BULKIMG_CACHE_DIR=str(cache_dir),
    )
    for name in PASSED_THROUGH:  # settings a bench run may compare (e.g. the GET path)
        if name in os.environ:
            env[name] = os.environ[name]
    return env


@dataclass(frozen=True, slots=True)
class BuildRun:
    """`bulkimg build --all` run as a process, and its build report."""

    process: ProcessRun
    report: dict[str, object]


def run_build(
    endpoint: str, catalog: Path, workdir: Path, cache_dir: Path, python: str = sys.executable
) -> BuildRun:
    """`python -m bulkimg build --all` in `workdir` (no .env or bulkimg.toml there)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = build_env(endpoint, catalog, workdir, cache_dir)
    process = run_measured(
        [python, "-m", "bulkimg", "build", "--all"], env, workdir, workdir / "build.log"
    )
    report_path = workdir / "output" / "build-report.json"
    if process.exit_code not in (0, 1) or not report_path.is_file():
        tail = (workdir / "build.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"bulkimg build failed ({process.exit_code}):\n{tail}")
    report = orjson.loads(report_path.read_bytes())
    return BuildRun(process, report)
