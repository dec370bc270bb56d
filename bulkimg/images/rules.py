"""The spec's image rules, in one place: which files are images bulkimg accepts.

A file is rejected when it is empty or larger than the byte limit (decided from the listing,
without reading it), when its bytes are not the format its extension names, when it is smaller
than the minimum size, or when it has more pixels than Shopify's safe limit. The header parser
(`header.py`) says what a file is; these rules say whether it is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from bulkimg.config import Settings
from bulkimg.images.header import format_for_extension
from bulkimg.models import ImageProbe, Rejection


@dataclass(frozen=True, slots=True)
class ImageRules:
    """The limits an accepted image keeps (settings: BULKIMG_MIN_WIDTH, ...)."""

    min_width: int
    min_height: int
    max_bytes: int
    max_megapixels: float

    @property
    def max_pixels(self) -> int:
        return int(self.max_megapixels * 1_000_000)

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageRules:
        return cls(
            settings.min_width,
            settings.min_height,
            settings.max_image_bytes,
            settings.max_megapixels,
        )

    def worth_reading(self, size: int) -> bool:
        """Neither empty nor too large: its header is worth a look (cache or S3)."""
        return 0 < size <= self.max_bytes

    def by_size(self, size: int) -> ImageProbe | None:
        """The verdict on a file of `size` bytes without reading it; None: read its header."""
        if size == 0:
            return ImageProbe(None, 0, 0, Rejection.EMPTY)
        if size > self.max_bytes:
            detail = f"{size} > {self.max_bytes} bytes"
            return ImageProbe(None, 0, 0, Rejection.FILE_TOO_LARGE, detail)
        return None

    def judge(self, probe: ImageProbe, extension: str) -> ImageProbe:
        """`probe` (a header read, fresh or cached) with the rules applied: rejected with the
        reason, or as it was."""
        if probe.rejection is not None or probe.format is None:
            return probe
        expected = format_for_extension(extension)
        width, height = probe.width, probe.height
        size = f"{width}x{height}"
        if expected is None or probe.format != expected.value:
            return rejected(
                probe, Rejection.FORMAT_MISMATCH, f"{probe.format} bytes in a .{extension} file"
            )
        if width < self.min_width or height < self.min_height:
            minimum = f"{self.min_width}x{self.min_height}"
            return rejected(probe, Rejection.TOO_SMALL, f"{size} < {minimum}")
        if width * height > self.max_pixels:
            return rejected(probe, Rejection.TOO_MANY_PIXELS, f"{size} > {self.max_megapixels} MP")
        return probe


def rejected(probe: ImageProbe, rejection: Rejection, detail: str) -> ImageProbe:
    """`probe` rejected for `rejection`, what was read kept."""
    return ImageProbe(probe.format, probe.width, probe.height, rejection, detail, probe.bytes_read)
