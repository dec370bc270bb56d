"""Keep the last N runs: each finished nightly run's files move to output/runs/<stamp>-<run id>/.

The state file, the header cache and the latest outputs stay where they are; the oldest run
folders and log files beyond `keep` are deleted.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

from bulkimg.formats.logs import LOG_KINDS
from bulkimg.outputs import create_private

# Copied (the latest stay in output/ for `bulkimg preview`, `retry` and `status`).
LATEST = ("plan.jsonl", "manifest.jsonl", "failures.jsonl", "build-report.json", "report.json",
          "report.md", "run.json", "preview.html")  # fmt: skip
# Moved: files that belong to one run only.
RUN_ONLY = (
    "results/*.jsonl",
    "variant_detach-*.jsonl",
    "variant_media-*.jsonl",
    "reorder_media-*.jsonl",
    "retry/*.jsonl",
    "productset-resolved-*.jsonl",
    "resolution-*.jsonl",
    "run-plan-*.jsonl",
)


def archive_run(output_dir: Path, run_id: str, keep: int) -> Path:
    """Copy the run's outputs and move its per-run files into output/runs/; prune old runs."""
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    folder = output_dir / "runs" / f"{stamp}-{run_id}"
    folder.mkdir(parents=True, exist_ok=True)
    for name in LATEST:
        if (output_dir / name).is_file():
            with (output_dir / name).open("rb") as source, create_private(folder / name) as copy:
                shutil.copyfileobj(source, copy)
    for pattern in RUN_ONLY:
        for path in output_dir.glob(pattern):
            target = folder / path.relative_to(output_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            path.replace(target)
    runs = sorted(p for p in (output_dir / "runs").iterdir() if p.is_dir())
    for old in runs[: max(0, len(runs) - keep)]:
        shutil.rmtree(old)
    return folder


def prune_logs(logs_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` log files of each kind."""
    removed: list[Path] = []
    for kind in LOG_KINDS:
        logs = sorted(logs_dir.glob(f"{kind}_*.log"))
        for old in logs[: max(0, len(logs) - keep)]:
            old.unlink()
            removed.append(old)
    return removed
