"""Unit tests of plan/incremental.py: which groups the state file says already match the shop.

A group is unchanged (no line) only when the product holds exactly the wanted images of
bulkimg (same Image_SKU, variation and ETag, in order, all READY) and every variant shows its
primary image. Records are built by hand; no state file is opened.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from bulkimg.formats.state import KnownMedia, ProductState, StateStore
from bulkimg.models import GroupPlan, PlannedImage, PlannedVariant
from bulkimg.plan.incremental import Incremental, classify

FOLDER = "sorted-media/11/02/19/"
ETAG_1 = "b006dc28aa11bb22cc33dd44ee55ff66"
ETAG_2 = "0123456789abcdef0123456789abcdef"


def s3_key(image_sku: str, variation: int) -> str:
    return f"{FOLDER}{image_sku}-{variation}a-100.jpg"


def wanted(position: int, image_sku: str, variation: int, etag: str) -> PlannedImage:
    return PlannedImage(position, image_sku, variation, s3_key(image_sku, variation), etag,
                        800, 800, f"{image_sku} - Image {variation}")  # fmt: skip


def make_plan(media: list[PlannedImage] | None = None,
              variants: list[PlannedVariant] | None = None) -> GroupPlan:  # fmt: skip
    if media is None:
        media = [wanted(1, "1102192", 1, ETAG_1), wanted(2, "1102192", 2, ETAG_2)]
    if variants is None:
        variants = [
            PlannedVariant("V1", "1102192", s3_key("1102192", 1)),
            PlannedVariant("V2", "1102192", s3_key("1102192", 1)),
        ]
    return GroupPlan("G-1", "g-1", "Ring", media, variants, [])


def ours(media_id: str, variation: int, etag: str, status: str = "READY") -> KnownMedia:
    return KnownMedia(media_id, "1102192", variation, etag, status, s3_key("1102192", variation))


def foreign(media_id: str) -> KnownMedia:
    """A lifestyle photo or manual upload: not bulkimg's."""
    return KnownMedia(media_id, None, None, None, "READY")


def known(media: list[KnownMedia] | None = None,
          variants: dict[str, tuple[str, str | None]] | None = None) -> ProductState:  # fmt: skip
    """The shop as the state file says: both images READY, both variants showing image 1."""
    if media is None:
        media = [ours("M1", 1, ETAG_1), ours("M2", 2, ETAG_2)]
    if variants is None:
        variants = {"V1": ("gid/V1", "M1"), "V2": ("gid/V2", "M1")}
    return ProductState("g-1", "gid://shopify/Product/1", media, variants)


def test_a_group_with_no_known_product_is_new() -> None:
    assert classify(make_plan(), None) == "new"


def test_a_product_holding_exactly_the_wanted_images_and_variant_images_is_unchanged() -> None:
    assert classify(make_plan(), known()) == "unchanged"


def test_images_that_are_not_bulkimgs_do_not_make_a_group_changed() -> None:
    media = [foreign("F0"), ours("M1", 1, ETAG_1), foreign("F1"), ours("M2", 2, ETAG_2)]

    assert classify(make_plan(), known(media)) == "unchanged"


def test_an_etag_known_by_its_first_8_characters_still_matches() -> None:
    # reconcile rebuilds the state from file names, which keep 8 characters of the ETag
    media = [ours("M1", 1, ETAG_1[:8]), ours("M2", 2, ETAG_2[:8])]

    assert classify(make_plan(), known(media)) == "unchanged"


def test_a_new_version_of_an_s3_object_makes_the_group_changed() -> None:
    media = [ours("M1", 1, ETAG_1), ours("M2", 2, "ffffffff" + ETAG_2[8:])]

    assert classify(make_plan(), known(media)) == "changed"


def test_an_image_that_is_not_ready_makes_the_group_changed() -> None:
    media = [ours("M1", 1, ETAG_1), ours("M2", 2, ETAG_2, status="FAILED")]

    assert classify(make_plan(), known(media)) == "changed"


def test_images_in_another_order_make_the_group_changed() -> None:
    media = [ours("M2", 2, ETAG_2), ours("M1", 1, ETAG_1)]

    assert classify(make_plan(), known(media)) == "changed"


@pytest.mark.parametrize(
    "media",
    [
        [ours("M1", 1, ETAG_1)],
        [ours("M1", 1, ETAG_1), ours("M2", 2, ETAG_2), ours("M3", 3, ETAG_2)],
        [],
    ],
    ids=["one-missing", "one-extra", "none"],
)
def test_a_different_number_of_bulkimg_images_makes_the_group_changed(
    media: list[KnownMedia],
) -> None:
    assert classify(make_plan(), known(media)) == "changed"


def test_an_image_of_another_image_sku_with_the_same_variation_is_not_the_same() -> None:
    other = KnownMedia("M2", "9999999", 2, ETAG_2, "READY")

    assert classify(make_plan(), known([ours("M1", 1, ETAG_1), other])) == "changed"


def test_a_variant_the_shop_does_not_have_makes_the_group_changed() -> None:
    assert classify(make_plan(), known(variants={"V1": ("gid/V1", "M1")})) == "changed"


@pytest.mark.parametrize("shown", ["M2", None], ids=["another-image", "no-image"])
def test_a_variant_not_showing_its_primary_image_makes_the_group_changed(
    shown: str | None,
) -> None:
    variants = {"V1": ("gid/V1", "M1"), "V2": ("gid/V2", shown)}

    assert classify(make_plan(), known(variants=variants)) == "changed"


def test_a_variant_without_a_primary_image_may_show_anything() -> None:
    variants = [
        PlannedVariant("V1", "1102192", s3_key("1102192", 1)),
        PlannedVariant("V2", "", None),
    ]
    shop = known(variants={"V1": ("gid/V1", "M1"), "V2": ("gid/V2", "F9")})

    assert classify(make_plan(variants=variants), shop) == "unchanged"


def test_a_group_with_no_image_today_keeps_what_the_shop_has() -> None:
    # No line would be sent anyway: files are left out of a line with no image.
    plan = make_plan(media=[], variants=[PlannedVariant("V1", "1102192", None)])

    assert classify(plan, known()) == "unchanged"


# -- Incremental: the state file applied to each plan -------------------------------------------


class FakeState:
    """Stands in for StateStore.product(handle)."""

    def __init__(self, products: dict[str, ProductState]) -> None:
        self.products = products
        self.asked: list[str] = []

    def product(self, handle: str) -> ProductState | None:
        self.asked.append(handle)
        return self.products.get(handle)


def as_store(fake: Any) -> StateStore:
    return cast(StateStore, fake)


def test_apply_marks_an_unchanged_plan_and_counts_it() -> None:
    state = FakeState({"g-1": known()})
    incremental = Incremental(as_store(state))
    plan = make_plan()

    incremental.apply(plan)

    assert (plan.unchanged, incremental.unchanged) == (True, 1)
    assert state.asked == ["g-1"]


@pytest.mark.parametrize(
    "products",
    [{}, {"g-1": known(variants={})}],
    ids=["new", "changed"],
)
def test_apply_leaves_a_new_or_changed_plan_to_be_sent(products: dict[str, ProductState]) -> None:
    incremental = Incremental(as_store(FakeState(products)))
    plan = make_plan()

    incremental.apply(plan)

    assert (plan.unchanged, incremental.unchanged) == (False, 0)


def test_without_a_state_file_every_group_is_sent() -> None:
    incremental = Incremental(None)
    plans = [make_plan(), make_plan()]

    for plan in plans:
        incremental.apply(plan)

    assert [p.unchanged for p in plans] == [False, False]
    assert incremental.unchanged == 0
