"""Old runs and logs are rotated: the last N are kept."""

from __future__ import annotations

from pathlib import Path


def test_old_runs_and_logs_are_rotated(tmp_path: Path) -> None:
    from bulkimg.run.rotation import archive_run, prune_logs

    out, logs = tmp_path / "output", tmp_path / "logs"
    (out / "results").mkdir(parents=True)
    logs.mkdir()
    for night_number in range(4):
        (out / "manifest.jsonl").write_text(f"night {night_number}\n")
        (out / "results" / f"product_set-{night_number}.results.jsonl").write_text("{}\n")
        (logs / f"missing_images_2026010{night_number}_000000.log").write_text("x\n")
        folder = archive_run(out, f"run{night_number}", keep=2)
        assert (folder / "manifest.jsonl").read_text() == f"night {night_number}\n"
        assert (folder / "results" / f"product_set-{night_number}.results.jsonl").is_file()
    runs = sorted(p.name.split("-", 1)[1] for p in (out / "runs").iterdir())
    assert runs == ["run2", "run3"]
    assert (out / "manifest.jsonl").read_text() == "night 3\n"  # the latest stays in place
    assert list((out / "results").iterdir()) == []
    prune_logs(logs, keep=2)
    assert sorted(p.name for p in logs.iterdir()) == [
        "missing_images_20260102_000000.log",
        "missing_images_20260103_000000.log",
    ]
