"""Another process holding bulkimg's writer lock, for the tests of one run at a time."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from bulkimg.config import load_settings
    from bulkimg.run.lock import writer_lock

    out = Path(sys.argv[1])
    settings = load_settings({"output_dir": out, "state_file": out / "state.sqlite"}, env_file=None)
    with writer_lock(settings, sys.argv[2]):
        print("held", flush=True)
        sys.stdin.read()
    """
)


@contextmanager
def lock_held(output_dir: Path, command: str = "submit --wait") -> Iterator[subprocess.Popen[str]]:
    """Another process holds the lock of `output_dir` (and of its state file) for the block."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(output_dir), command],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        yield holder
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(30)
