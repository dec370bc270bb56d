"""`output/manifest.jsonl`: what a submit (or retry, merged) did to each group of the plan."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bulkimg.formats.jsonl import read_models, write_models
from bulkimg.statuses import MediaStatus

MANIFEST_FILE = "manifest.jsonl"

GroupStatus = Literal["done", "failed", "missing"]
# What submit did to the product: created it, changed its images, found it right, or left it
# alone (conflict, --no-create).
GroupAction = Literal["create", "update", "unchanged", "conflict", "not_created"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ManifestMedia(_Record):
    id: str | None = None
    s3_key: str
    etag: str | None = None
    status: MediaStatus | None = None  # None: not on the shop (its line failed or never ran)


class ManifestVariant(_Record):
    sku: str
    id: str | None = None
    media_id: str | None = None
    s3_key: str | None = None


class ManifestRecord(_Record):
    """One line: what a submit did to one group."""

    group_id: str
    product_id: str | None = None
    handle: str
    status: GroupStatus
    action: GroupAction | None = None  # None: no line was resolved for the group
    media: list[ManifestMedia] = []
    variants: list[ManifestVariant] = []


def read_manifest(path: Path) -> list[ManifestRecord]:
    """The manifest's records ([] when there is none yet)."""
    return list(read_models(path, ManifestRecord)) if path.is_file() else []


def write_manifest(path: Path, records: Iterable[ManifestRecord]) -> None:
    write_models(path, records)


def merged_manifest(path: Path, records: list[ManifestRecord]) -> list[ManifestRecord]:
    """The manifest at `path` with the records of `records`' groups replaced (a retry's), the
    other groups' records kept in their order, new groups after them."""
    fresh = {r.group_id: r for r in records}
    merged = [fresh.pop(r.group_id, r) for r in read_manifest(path)]
    return merged + list(fresh.values())


def manifest_counts(path: Path) -> dict[str, int]:
    """Groups by status (after a retry: of the merged manifest)."""
    counts = {"done": 0, "missing": 0, "failed": 0}
    for record in read_manifest(path):
        counts[record.status] += 1
    return counts
