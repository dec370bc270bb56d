"""The spec's log files: one line per problem, safe to read in a terminal."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from bulkimg.models import MissingImage


def log_safe(value: str, limit: int = 300) -> str:
    """Escape control and non-printable characters; cut very long values."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)
    return text if len(text) <= limit else text[:limit] + "…"


def log_file_name(kind: str, started: datetime) -> str:
    """`missing_images_20251027_142345.log`"""
    return f"{kind}_{started.strftime('%Y%m%d_%H%M%S')}.log"


def missing_image_line(item: MissingImage, at: datetime) -> str:
    error = item.reason.value + (f" ({item.detail})" if item.detail else "")
    return (
        f"[{at.strftime('%Y-%m-%d %H:%M:%S')}] Product Group: {log_safe(item.group_id)}"
        f" | Product SKU: {log_safe(item.sku)} | Image SKU: {log_safe(item.image_sku)}"
        f" | S3 Path: {log_safe(item.s3_path) or '-'} | Error: {log_safe(error, 1000)}\n"
    )


class MissingImagesLog:
    """logs/missing_images_YYYYMMDD_HHMMSS.log, written through an OutputSet handle."""

    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self.handle = handle
        self.path = path
        self.count = 0

    def write(self, item: MissingImage, at: datetime) -> None:
        self.handle.write(missing_image_line(item, at).encode("utf-8"))
        self.count += 1
