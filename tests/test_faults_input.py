"""Hostile catalog input: S3 keys stay under the base prefix; bad rows end with a reason."""

from __future__ import annotations

import posixpath
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkimg.models import Rejection
from bulkimg.s3keys import (
    ACCEPTED_EXTENSIONS,
    MAX_VARIATION_DIGITS,
    ParsedName,
    extract_variation_number,
    folder_for,
    is_valid_image_sku,
    parse_image_name,
)

# Pieces an attacker (or a broken export) puts in a value; joined in any order by `hostile`.
NASTY_PIECES = [
    "/", "\\", "..", ".", "../", "..\\", "%2F", "%2e%2e", "~", "\x00", "\n", "\r", "\t", " ",
    "\x1b[31m", "\x7f", "\u0085", "\u2028", "\u202e", "\ufeff", "\udcff", "\u0661", "\uff11",
    "é", "😀", "-", "_", "a", "1a", "827749", "sorted-media", "*", "?", "'", '"', ",", "|",
]  # fmt: skip
ASCII_SAFE = re.compile(r"[A-Za-z0-9_-]{2}")

hostile = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(NASTY_PIECES) | st.text(max_size=4), max_size=12).map("".join),
    st.integers(min_value=190, max_value=5000).map(lambda n: "7" * n),  # very long values
    st.just(""),
)
prefixes = st.sampled_from(["sorted-media/", "media/base/", "x/"])
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.fault_matrix(
    area="Input",
    fault="Image_SKU with path separators, '..', control characters, any Unicode, very long",
    outcome="folder is <base prefix> + three 2-character [A-Za-z0-9_-] parts, or ValueError",
)
@FAST
@given(sku=hostile, prefix=prefixes)
def test_any_image_sku_gives_a_folder_of_three_safe_parts_under_the_prefix_or_an_error(
    sku: str, prefix: str
) -> None:
    try:
        folder = folder_for(sku, prefix)
    except ValueError:
        assert not is_valid_image_sku(sku)
        return
    assert is_valid_image_sku(sku)
    assert folder.startswith(prefix)
    parts = folder[len(prefix) :].split("/")
    assert len(parts) == 4 and parts[3] == ""
    assert all(ASCII_SAFE.fullmatch(p) for p in parts[:3]), folder
    assert posixpath.normpath(folder) + "/" == folder  # nothing for a path resolver to undo


@pytest.mark.fault_matrix(
    area="Input",
    fault="S3 file names with separators, '..', control characters, non-ASCII digits, huge numbers",
    outcome="a name is parsed only when it is <SKU>-<1-9 ASCII digits>a-<digits>.<ext>;"
    " anything else is None or a Rejection, never an exception",
)
@FAST
@given(
    sku=st.sampled_from(["827749", "1102192", "A_b-9"]),
    number=hostile | st.integers(min_value=0, max_value=10**12).map(str),
    suffix=st.sampled_from(["a", "b", "A", "", "a/..", "a\x00"]),
    random=hostile | st.integers(min_value=0).map(str),
    ext=st.sampled_from([*ACCEPTED_EXTENSIONS, "JPG", "txt", "jpg/..", "jpg\x00", "jp\u0261"]),
    prefix=prefixes,
)
def test_file_name_parser_accepts_only_safe_names_and_never_raises(
    sku: str, number: str, suffix: str, random: str, ext: str, prefix: str
) -> None:
    name = f"{sku}-{number}{suffix}-{random}.{ext}"
    result = parse_image_name(name, sku)
    assert result is None or isinstance(result, ParsedName | Rejection)
    variation = extract_variation_number(name)
    if not isinstance(result, ParsedName):
        return
    if "-" not in sku:  # the spec's helper takes the SKU as the text before the first '-'
        assert variation == result.variation
    assert re.fullmatch(f"[0-9]{{1,{MAX_VARIATION_DIGITS}}}", number)
    assert result.variation == int(number)
    assert result.extension in ACCEPTED_EXTENSIONS
    assert name.isascii() and name.isprintable()
    assert "/" not in name and "\\" not in name and ".." not in name
    key = folder_for(sku, prefix) + name
    assert posixpath.normpath(key) == key and key.startswith(prefix)


@pytest.mark.parametrize(
    "name",
    [
        "827749-\u0661a-1.jpg",  # ARABIC-INDIC DIGIT ONE
        "827749-\uff11a-1.jpg",  # FULLWIDTH DIGIT ONE
        "827749-1a-\uff15.jpg",
        "827749-" + "1" * 5000 + "a-1.jpg",  # int() refuses over 4300 digits
        "827749-" + "9" * (MAX_VARIATION_DIGITS + 1) + "a-1.jpg",
    ],
)
def test_non_ascii_digits_and_huge_variation_numbers_are_a_pattern_rejection(name: str) -> None:
    assert parse_image_name(name, "827749") is Rejection.PATTERN
    assert extract_variation_number(name) is None


@FAST
@given(st.text() | hostile)
def test_extract_variation_number_never_raises(name: str) -> None:
    number = extract_variation_number(name)
    assert number is None or 0 <= number < 10**MAX_VARIATION_DIGITS
