"""variantimages: which variants of a product that exists get their primary image."""

from __future__ import annotations

import pytest

from bulkimg.shop.variantimages import Choice, choose

OWN = {"m-a1": "A", "m-a2": "A", "m-b1": "B"}  # bulkimg's images: media id -> Image_SKU


@pytest.mark.parametrize(
    ("shown", "replace_all", "expected"),
    [
        (None, False, Choice.SET),  # shows nothing (or a copy the run deletes)
        ("m-a1", False, Choice.RIGHT),  # its primary image already
        ("m-b1", False, Choice.SWAP),  # bulkimg's image of another set: the catalog moved it
        ("m-a2", False, Choice.KEEP),  # a pick within its own set: a merchant's choice
        ("lifestyle", False, Choice.KEEP),  # not bulkimg's
        ("m-a2", True, Choice.SWAP),  # --replace-variant-images: the spec's rule everywhere
        ("lifestyle", True, Choice.SWAP),
        ("m-a1", True, Choice.RIGHT),
        (None, True, Choice.SET),
    ],
)
def test_a_variant_changes_only_when_it_shows_nothing_or_bulkimgs_image_of_another_set(
    shown: str | None, replace_all: bool, expected: Choice
) -> None:
    assert choose("A", "m-a1", shown, OWN, replace_all) is expected


def test_a_primary_image_not_on_the_product_yet_never_counts_as_shown() -> None:
    assert choose("A", None, "m-a2", OWN) is Choice.KEEP
    assert choose("A", None, "m-b1", OWN) is Choice.SWAP
