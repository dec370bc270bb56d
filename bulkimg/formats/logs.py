"""The spec's two log files, one line per problem, safe to read in a terminal:
`logs/missing_images_*.log` (build) and `logs/image_upload_failures_*.log` (submit, retry)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from bulkimg.formats.failures import FailureRecord
from bulkimg.formats.manifest import ManifestRecord
from bulkimg.models import MissingImage
from bulkimg.redact import redact_url


def log_safe(value: str, limit: int = 300) -> str:
    """Escape control and non-printable characters; cut very long values."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)
    return text if len(text) <= limit else text[:limit] + "…"


MISSING_IMAGES = "missing_images"  # logs/missing_images_YYYYMMDD_HHMMSS.log (build)
UPLOAD_FAILURES = "image_upload_failures"  # logs/image_upload_failures_….log (submit, retry)
LOG_KINDS = (MISSING_IMAGES, UPLOAD_FAILURES)


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


def upload_failure_lines(
    manifest: list[ManifestRecord], failures: list[FailureRecord]
) -> Iterator[str]:
    """The spec's upload-failure log: one line per image a failure kept off its product."""
    products = {e.group_id: e for e in manifest}
    now = datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    for failure in failures:
        entry = products.get(failure.group_id)
        product = (entry.product_id if entry else None) or f"(handle {failure.handle})"
        error = "; ".join(f"{e.code}: {e.message}" for e in failure.errors)
        media_keys = [m.s3_key for m in entry.media] if entry else []
        keys = media_keys if failure.phase != "variant_media" else []
        keys = keys or [failure.s3_key or "-"]
        for key in keys:
            yield (
                f"[{now}] Product: {log_safe(product)} | Image: {log_safe(key.rsplit('/', 1)[-1])}"
                f" | S3 Key: {log_safe(key)} | Phase: {failure.phase}"
                f" | Error: {log_safe(redact_url(error), 1000)}\n"
            )
