"""shopify_filename: the name of an S3 object on Shopify, as pathlib's stem and suffix say."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkimg.plan.names import parse_shopify_filename, shopify_filename

SEGMENT = st.text(alphabet="ab.-_1a é/", max_size=12)


@given(key=st.lists(SEGMENT, min_size=1, max_size=4).map("/".join), etag=st.text(max_size=40))
def test_name_is_the_keys_stem_etag_and_suffix(key: str, etag: str) -> None:
    path = PurePosixPath(key)
    assert shopify_filename(key, etag) == f"{path.stem}--{etag[:8]}{path.suffix}"


def test_a_bulkimg_name_parses_back() -> None:
    name = shopify_filename("sorted-media/11/02/19/1102192-1a-100.jpg", "b006dc28ffff")
    assert name == "1102192-1a-100--b006dc28.jpg"
    parsed = parse_shopify_filename(name)
    assert parsed is not None and parsed.s3_filename == "1102192-1a-100.jpg"


@pytest.mark.parametrize(
    "name",
    [
        "1102192-\u0661a-100--b006dc28.jpg",  # ARABIC-INDIC DIGIT ONE as the variation
        "1102192-1a-\uff11\uff10\uff10--b006dc28.jpg",  # FULLWIDTH digits
        "1102192-1a-100.jpg",  # no ETag part: the old workflow's or a merchant's upload
        "IMG_0042.jpg",
    ],
)
def test_a_name_bulkimg_never_gives_is_not_bulkimgs(name: str) -> None:
    # An image taken for bulkimg's own may be deleted when it goes stale: only bulkimg's names.
    assert parse_shopify_filename(name) is None
