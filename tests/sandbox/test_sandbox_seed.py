"""Unit tests of the seeder's image acceptance: the old workflow uploaded what bulkimg's build
accepts (images/rules.py), so a seeded shop holds exactly the images a build would plan."""

from __future__ import annotations

import pytest

from bulkimg.config import load_settings
from bulkimg.images.rules import ImageRules
from bulkimg.models import CatalogGroup, ImageSkuState, Variant
from bulkimg.sandbox.seed import DEFAULT_RULES, S3Image, SeedOptions, accepted_images

KEY = "sorted-media/82/77/49/827749-{}a-1.{}"


def test_the_seeders_default_rules_are_the_settings_defaults() -> None:
    assert ImageRules.from_settings(load_settings({}, env_file=None)) == DEFAULT_RULES


def group() -> CatalogGroup:
    variant = Variant(sku="A1", image_sku="827749", image_sku_state=ImageSkuState.OK, group_id="G")
    return CatalogGroup(group_id="G", variants=[variant])


@pytest.mark.parametrize(
    ("image", "accepted"),
    [
        (S3Image(KEY.format(1, "jpg"), "jpeg", 800, 800, 5_000), True),
        (S3Image(KEY.format(1, "png"), "jpeg", 800, 800, 5_000), False),  # not its extension's
        (S3Image(KEY.format(1, "jpg"), "jpeg", 199, 800, 5_000), False),  # under the minimum
        (S3Image(KEY.format(1, "jpg"), "jpeg", 5000, 5000, 5_000), False),  # over 20 MP
        (S3Image(KEY.format(1, "jpg"), "jpeg", 800, 800, 0), False),  # empty
        (S3Image(KEY.format(1, "jpg"), "jpeg", 800, 800, 21 << 20), False),  # over 20 MiB
        (S3Image(KEY.format(1, "jpg"), None, 0, 0, 5_000), False),  # not an image
    ],
)
def test_an_image_is_seeded_when_the_build_would_accept_it(image: S3Image, accepted: bool) -> None:
    found = accepted_images([group()], [image], SeedOptions())
    assert found == ({"827749": [(1, image)]} if accepted else {})


def test_the_newest_object_of_a_variation_is_the_one_seeded() -> None:
    old = S3Image(KEY.format(2, "jpg"), "jpeg", 800, 800, 5_000, last_modified=1.0)
    new = S3Image(KEY.format(2, "png"), "png", 800, 800, 5_000, last_modified=2.0)
    assert accepted_images([group()], [new, old], SeedOptions()) == {"827749": [(2, new)]}
