"""Progress on long stages: plain log lines when the output is not a terminal."""

from __future__ import annotations

import io

from bulkimg.progress import PlainReporter


def test_plain_reporter_writes_start_progress_and_end_lines() -> None:
    stream = io.StringIO()
    reporter = PlainReporter(stream, interval=0.0)
    reporter.start("Reading image headers", 3)
    reporter.advance("Reading image headers")
    reporter.advance("Reading image headers", 2)
    reporter.finish("Reading image headers")
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith("Reading image headers: 0/3")
    assert lines[-2].endswith("Reading image headers: 3/3")
    assert lines[-1].endswith("Reading image headers: done (3)")


def test_plain_reporter_throttles_progress_lines() -> None:
    stream = io.StringIO()
    reporter = PlainReporter(stream, interval=3600)
    reporter.start("Listing S3 folders", 1000)
    for _ in range(1000):
        reporter.advance("Listing S3 folders")
    assert len(stream.getvalue().splitlines()) == 1


def test_json_reporter_writes_one_json_object_per_event() -> None:
    import json

    from bulkimg.progress import JsonReporter

    stream = io.StringIO()
    reporter = JsonReporter(stream, interval=0.0)
    reporter.start("Listing S3 folders", 2)
    reporter.advance("Listing S3 folders", 2)
    reporter.finish("Listing S3 folders")
    reporter.info('a "quoted" message')
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["stage_started", "progress", "stage_finished", "info"]
    assert events[1] == {**events[1], "stage": "Listing S3 folders", "done": 2, "total": 2}
    assert events[3]["message"] == 'a "quoted" message' and "ts" in events[3]
