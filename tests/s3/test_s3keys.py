"""The spec's path and file-name rules (including every example of its tests section)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkimg.models import Rejection
from bulkimg.s3.keys import (
    ParsedName,
    extract_variation_number,
    folder_for,
    is_valid_image_sku,
    parse_image_name,
    validate_filename,
)


def test_construct_s3_path_examples_from_the_spec() -> None:
    assert folder_for("827749") == "sorted-media/82/77/49/"
    assert folder_for("1102192") == "sorted-media/11/02/19/"
    assert folder_for("123") == "sorted-media/12/30/00/"


def test_neighbouring_skus_share_a_folder() -> None:
    assert folder_for("1102192") == folder_for("1102193")


def test_validate_filename_examples_from_the_spec() -> None:
    assert validate_filename("827749-1a-12345.jpg", "827749") is True
    assert validate_filename("827749-1b-12345.jpg", "827749") is False
    assert validate_filename("1102193-1a-12345.jpg", "1102192") is False


def test_extract_variation_number_examples_from_the_spec() -> None:
    assert extract_variation_number("827749-1a-12345.jpg") == 1
    assert extract_variation_number("827749-10a-12345.jpg") == 10
    assert extract_variation_number("827749-1b-12345.jpg") is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("1102192-2a-67890.png", ParsedName(2, "png")),
        ("1102192-10a-54321.jpg", ParsedName(10, "jpg")),
        ("1102192-1a-1.JPG", ParsedName(1, "jpg")),
        ("1102192-1a-1.WebP", ParsedName(1, "webp")),
        ("1102192-1a-1.jpeg", ParsedName(1, "jpeg")),
        ("1102192-1a-1.gif", ParsedName(1, "gif")),
        ("1102192-1b-12345.jpg", Rejection.SUFFIX),
        ("1102192-1A-12345.jpg", Rejection.SUFFIX),
        ("1102192-thumbnail.jpg", Rejection.PATTERN),
        ("1102192-1-12345.jpg", Rejection.PATTERN),
        ("1102192-1a-12x45.jpg", Rejection.PATTERN),
        ("1102192-1a-12345.txt", Rejection.EXTENSION),
        ("1102192-1a-12345.pdf", Rejection.EXTENSION),
        ("1102193-1a-12345.jpg", None),
        ("11021920-1a-12345.jpg", None),
    ],
)
def test_file_names_are_classified_with_a_reason(
    name: str, expected: ParsedName | Rejection | None
) -> None:
    assert parse_image_name(name, "1102192") == expected


@pytest.mark.parametrize("sku", ["", "82/77/49", "../etc", "a b", "827749\n", "é123", "x" * 201])
def test_invalid_image_skus_never_become_keys(sku: str) -> None:
    assert not is_valid_image_sku(sku)
    with pytest.raises(ValueError, match="invalid Image_SKU"):
        folder_for(sku)


@given(st.text())
def test_any_text_gives_a_key_inside_sorted_media_or_an_error(sku: str) -> None:
    try:
        folder = folder_for(sku)
    except ValueError:
        assert not is_valid_image_sku(sku)
        return
    assert folder.startswith("sorted-media/")
    assert folder.count("/") == 4
    assert ".." not in folder


@given(st.text(), st.text())
def test_name_parser_never_crashes(name: str, sku: str) -> None:
    result = parse_image_name(name, sku)
    assert result is None or isinstance(result, ParsedName | Rejection)
