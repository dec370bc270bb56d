"""The spec's naming rules: which S3 folder holds an Image_SKU, and which file names count."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bulkimg.models import Rejection

IMAGE_SKU_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
MAX_IMAGE_SKU_LENGTH = 200
ACCEPTED_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "gif", "webp"})
# Each accepted extension as one shared string: a build holds one per candidate image.
_EXTENSION = {ext: ext for ext in ACCEPTED_EXTENSIONS}
# A variation number is a position, not an id: more digits than this is not a name we made.
MAX_VARIATION_DIGITS = 9

# After "<Image_SKU>-": "<N><letters>-<digits>.<ext>"; each part is checked for its own reason.
# ASCII digits only: `\d` would read Arabic-Indic or fullwidth digits as variation numbers.
_TAIL = re.compile(
    r"(?P<number>[0-9]+)(?P<suffix>[A-Za-z]*)-(?P<random>[0-9]+)\.(?P<ext>[A-Za-z0-9]+)"
)


@dataclass(frozen=True, slots=True)
class ParsedName:
    """A file name that follows the pattern for its Image_SKU."""

    variation: int
    extension: str


def is_valid_image_sku(image_sku: str) -> bool:
    """True when the Image_SKU may become part of an S3 key."""
    return (
        0 < len(image_sku) <= MAX_IMAGE_SKU_LENGTH
        and IMAGE_SKU_PATTERN.fullmatch(image_sku) is not None
    )


def folder_for(image_sku: str, prefix: str = "sorted-media/") -> str:
    """The folder of an Image_SKU: first six characters, padded with '0', in 2-character parts.

    >>> folder_for("1102192")
    'sorted-media/11/02/19/'
    >>> folder_for("123")
    'sorted-media/12/30/00/'
    """
    if not is_valid_image_sku(image_sku):
        raise ValueError(f"invalid Image_SKU {image_sku!r}")
    head = image_sku[:6].ljust(6, "0")
    return f"{prefix}{head[0:2]}/{head[2:4]}/{head[4:6]}/"


def parse_image_name(filename: str, image_sku: str) -> ParsedName | Rejection | None:
    """Classify `filename` for `image_sku`.

    Returns None when the file does not belong to this Image_SKU at all (another SKU's file),
    a Rejection when it starts with the SKU but breaks a rule, else the parsed name.
    """
    if not filename.startswith(image_sku + "-"):
        return None
    match = _TAIL.fullmatch(filename, len(image_sku) + 1)
    if match is None or len(match["number"]) > MAX_VARIATION_DIGITS:
        return Rejection.PATTERN
    ext = match["ext"].lower()
    if ext not in ACCEPTED_EXTENSIONS:
        return Rejection.EXTENSION
    ext = _EXTENSION[ext]
    if match["suffix"] != "a":
        return Rejection.SUFFIX if match["suffix"] else Rejection.PATTERN
    return ParsedName(variation=int(match["number"]), extension=ext)


def validate_filename(filename: str, image_sku: str) -> bool:
    """The spec's `validate_filename`: does `filename` name one of `image_sku`'s images?"""
    return isinstance(parse_image_name(filename, image_sku), ParsedName)


def extract_variation_number(filename: str) -> int | None:
    """The spec's `extract_variation_number`: "827749-10a-1.jpg" -> 10; None if not an 'a' image."""
    sku, sep, _ = filename.partition("-")
    if not sep:
        return None
    parsed = parse_image_name(filename, sku)
    return parsed.variation if isinstance(parsed, ParsedName) else None
