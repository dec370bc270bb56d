"""What indexing a bucket cost and found: the listing's and the header reads' counts, for the
build report (one record both `listing.py` and `index.py` fill)."""

from __future__ import annotations

import math
import statistics
from array import array
from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class IndexStats:
    """What indexing cost and found (for the build report)."""

    folders_needed: int = 0
    strategy: str = "skip-scan"  # folders, sweep or skip-scan (the listing `auto` makes)
    strategy_reason: str = ""  # why that strategy (the report says it)
    warnings: list[str] = field(default_factory=list)  # for the report and the output
    prefixes_swept: int = 0
    list_chains: int = 0  # listings run in parallel: one per folder, prefix or chain
    list_pages: int = 0
    objects_listed: int = 0
    other_files: int = 0
    candidates: int = 0
    cache_hits: int = 0
    probed: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    # per header read; an array: 200,000 ints as Python objects would hold ~7 MB
    bytes_read: array[int] = field(default_factory=lambda: array("q"))

    def bytes_read_summary(self) -> dict[str, int]:
        if not self.bytes_read:
            return {"median": 0, "p99": 0, "max": 0}
        ordered = sorted(self.bytes_read)
        p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
        return {"median": int(statistics.median(ordered)), "p99": p99, "max": ordered[-1]}
