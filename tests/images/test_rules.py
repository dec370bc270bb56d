"""The spec's image rules (bulkimg/images/rules.py): which files are accepted, and why not."""

from __future__ import annotations

import pytest

from bulkimg.images.rules import ImageRules
from bulkimg.models import ImageProbe, Rejection

RULES = ImageRules(min_width=200, min_height=200, max_bytes=1000, max_megapixels=1.0)


def header(fmt: str, width: int, height: int) -> ImageProbe:
    return ImageProbe(fmt, width, height, None, "", 64)


def test_an_empty_or_too_large_file_is_rejected_without_reading_it() -> None:
    assert RULES.by_size(0) == ImageProbe(None, 0, 0, Rejection.EMPTY)
    too_large = RULES.by_size(1001)
    assert too_large is not None and too_large.rejection is Rejection.FILE_TOO_LARGE
    assert too_large.detail == "1001 > 1000 bytes"
    assert RULES.by_size(1000) is None and RULES.by_size(1) is None  # read its header
    assert RULES.worth_reading(1000) and not RULES.worth_reading(0)
    assert not RULES.worth_reading(1001)


@pytest.mark.parametrize("extension", ["jpg", "jpeg", "JPG"])
def test_an_image_of_its_extensions_format_and_within_limits_is_accepted(extension: str) -> None:
    probe = header("jpeg", 200, 200)
    assert RULES.judge(probe, extension) is probe


def test_bytes_of_another_format_than_the_extension_names_are_rejected() -> None:
    judged = RULES.judge(header("png", 300, 300), "jpg")
    assert judged.rejection is Rejection.FORMAT_MISMATCH
    assert judged.detail == "png bytes in a .jpg file"
    assert RULES.judge(header("jpeg", 300, 300), "tiff").rejection is Rejection.FORMAT_MISMATCH


@pytest.mark.parametrize(("width", "height"), [(199, 300), (300, 199)])
def test_an_image_under_the_minimum_on_either_side_is_too_small(width: int, height: int) -> None:
    judged = RULES.judge(header("jpeg", width, height), "jpg")
    assert judged.rejection is Rejection.TOO_SMALL
    assert judged.detail == f"{width}x{height} < 200x200"
    assert judged.bytes_read == 64  # what was read is kept


def test_more_pixels_than_the_limit_is_rejected_and_the_limit_itself_is_not() -> None:
    assert RULES.judge(header("jpeg", 1000, 1000), "jpg").rejection is None
    judged = RULES.judge(header("jpeg", 1000, 1001), "jpg")
    assert judged.rejection is Rejection.TOO_MANY_PIXELS
    assert judged.detail == "1000x1001 > 1.0 MP"


def test_a_header_already_rejected_is_left_as_the_parser_said() -> None:
    broken = ImageProbe(None, 0, 0, Rejection.CORRUPT, "truncated", 10)
    assert RULES.judge(broken, "jpg") is broken
