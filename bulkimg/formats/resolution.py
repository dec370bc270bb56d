"""`output/resolution-<run>.jsonl`: each group of a run as submit resolved it against the shop
(shop/resolve.py writes it; phase 2, the outcome, the nightly report and the preview read it), and
where `plan --against-shop` leaves its own (`output/check/`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel

from bulkimg.formats.jsonl import read_models

Action = Literal["create", "update", "unchanged", "conflict", "not_created", "held"]
# Where `plan --against-shop` leaves its resolution (under the output dir); the preview shows it.
CHECK_DIR = "check"
CHECK_RUN_ID = "check"
CHECK_RESOLUTION = Path(CHECK_DIR) / f"resolution-{CHECK_RUN_ID}.jsonl"


class LineRef(BaseModel):
    """One resolved line of a group: its document, file and 1-based line."""

    document: str
    file: str
    line: int


class ResolvedGroup(BaseModel):
    """One group of a run as resolved against the shop (a line of resolution-<run>.jsonl)."""

    group_id: str
    handle: str
    action: Action
    match: str
    product_id: str | None = None
    lines: list[LineRef] = []  # what is sent for it (none: nothing to send)
    detail: str = ""
    media_of: dict[str, str] = {}  # S3 key -> media id already on the product (kept/adopted)
    # Variant id -> S3 key: a variant showing a copy this line replaces or removes, of an image
    # of its own Image_SKU, shows that image's new (or kept) copy again after phase 2, not its
    # primary image (shop/variantimages.py).
    relink: dict[str, str] = {}
    uploads: list[str] = []  # S3 keys the line uploads (new, or replacing a copy)
    dropped: list[str] = []  # media ids of bulkimg's copies the run deletes
    adopted: int = 0
    uploaded: int = 0
    replaced: int = 0
    removed: int = 0
    kept_foreign: int = 0
    variant_images_set: int = 0  # variants that show no image and get their primary image
    variant_images_swapped: int = 0  # variants whose image is detached for their primary one
    variant_images_kept: int = 0  # variants showing an image bulkimg does not replace

    def dump(self) -> bytes:
        return orjson.dumps(self.model_dump()) + b"\n"


def read_resolution(path: Path) -> Iterator[ResolvedGroup]:
    return read_models(path, ResolvedGroup, "a resolved group")
