"""Progress of long stages: a rich progress bar on a terminal, plain log lines elsewhere."""

from __future__ import annotations

import json
import sys
import time
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class Reporter(Protocol):
    """What a stage tells the person waiting for it."""

    def start(self, stage: str, total: int) -> None: ...
    def advance(self, stage: str, amount: int = 1) -> None: ...
    def finish(self, stage: str) -> None: ...
    def info(self, message: str) -> None: ...


class NullReporter:
    """Says nothing (library use and tests)."""

    def start(self, stage: str, total: int) -> None:
        pass

    def advance(self, stage: str, amount: int = 1) -> None:
        pass

    def finish(self, stage: str) -> None:
        pass

    def info(self, message: str) -> None:
        pass


class PlainReporter:
    """One line per stage start and end, and a line at most every `interval` seconds between."""

    def __init__(self, stream: TextIO | None = None, interval: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self._totals: dict[str, int] = {}
        self._done: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def _emit(self, event: str, text: str, **fields: object) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=self.stream, flush=True)

    def start(self, stage: str, total: int) -> None:
        self._totals[stage], self._done[stage], self._last[stage] = total, 0, time.monotonic()
        self._emit("stage_started", f"{stage}: 0/{total}", stage=stage, total=total)

    def advance(self, stage: str, amount: int = 1) -> None:
        self._done[stage] = done = self._done.get(stage, 0) + amount
        now = time.monotonic()
        if now - self._last.get(stage, 0.0) >= self.interval:
            self._last[stage] = now
            total = self._totals.get(stage)
            self._emit("progress", f"{stage}: {done}/{total}", stage=stage, done=done, total=total)

    def finish(self, stage: str) -> None:
        done = self._done.get(stage, 0)
        self._emit("stage_finished", f"{stage}: done ({done})", stage=stage, done=done)

    def info(self, message: str) -> None:
        self._emit("info", message, message=message)


def json_event(stream: TextIO, event: str, **fields: object) -> None:
    """One JSON object on one line: the time, the event's name and its fields."""
    record = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": event, **fields}
    print(json.dumps(record, ensure_ascii=False, default=str), file=stream, flush=True)


class JsonReporter(PlainReporter):
    """The same events as JSON objects, one per line, for log shippers."""

    def _emit(self, event: str, text: str, **fields: object) -> None:
        json_event(self.stream, event, **fields)


class RichReporter:
    """A live progress bar per stage (use as a context manager)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichReporter:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, stage: str, total: int) -> None:
        self._tasks[stage] = self._progress.add_task(stage, total=total)

    def advance(self, stage: str, amount: int = 1) -> None:
        if stage in self._tasks:
            self._progress.advance(self._tasks[stage], amount)

    def finish(self, stage: str) -> None:
        if stage in self._tasks:
            task = self._tasks[stage]
            total = next(t.total for t in self._progress.tasks if t.id == task)
            self._progress.update(task, completed=total)

    def info(self, message: str) -> None:
        self._progress.console.log(message)
