"""output/plan.jsonl as typed records: written by build, read by submit, retry and preview."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import orjson
from pydantic import BaseModel

from bulkimg.errors import InputFileError
from bulkimg.formats.jsonl import read_models
from bulkimg.models import GroupPlan, PlannedImage, PlannedVariant

PLAN_FILE = "plan.jsonl"


class PlanMedia(BaseModel):
    position: int
    s3_key: str
    image_sku: str
    variation: int
    width: int
    height: int
    etag: str
    alt: str
    media_id: str | None = None  # already on the product: kept by id, not uploaded again
    size: int | None = None  # bytes of the S3 object (an adopted copy must have as many)


class PlanVariant(BaseModel):
    sku: str
    image_sku: str
    image_s3_key: str | None


class PlanMissing(BaseModel):
    sku: str
    image_sku: str
    reason: str
    detail: str = ""


class PlanRejected(BaseModel):
    image_sku: str
    s3_key: str
    reason: str
    detail: str = ""


class PlanRecord(BaseModel):
    """One product group: what its productSet line does, and where the line is."""

    group_id: str
    handle: str
    title: str
    status: Literal["planned", "deferred", "unchanged"]
    deferred_reason: str | None = None
    file: str | None = None
    line: int | None = None  # 1-based line in `file`
    media: list[PlanMedia] = []
    variants: list[PlanVariant] = []
    missing: list[PlanMissing] = []
    rejected: list[PlanRejected] = []

    def to_group_plan(self) -> GroupPlan:
        media = [
            PlannedImage(
                m.position,
                m.image_sku,
                m.variation,
                m.s3_key,
                m.etag,
                m.width,
                m.height,
                m.alt,
                m.size,
            )
            for m in self.media
        ]
        variants = [PlannedVariant(v.sku, v.image_sku, v.image_s3_key) for v in self.variants]
        return GroupPlan(self.group_id, self.handle, self.title, media, variants, [])

    def dump(self) -> bytes:
        return orjson.dumps(self.model_dump()) + b"\n"


def read_plan(path: Path) -> Iterator[PlanRecord]:
    """The records of a plan file, one at a time."""
    if not path.is_file():
        raise InputFileError(f"{path} not found: run `bulkimg build` first")
    yield from read_models(path, PlanRecord, "a plan record")
