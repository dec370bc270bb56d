"""Unit tests of plan/groups.py: one catalog group and the S3 index -> the plan of its product.

Pure functions on hand-made records: no S3, no catalog, no shop.
"""

from __future__ import annotations

import pytest

from bulkimg.errors import ConfigError
from bulkimg.models import (
    AcceptedImage,
    CatalogGroup,
    ImageSkuState,
    MissingReason,
    RejectedFile,
    Rejection,
    SkuImages,
    Variant,
)
from bulkimg.plan.groups import PlanRules, plan_group

GROUP = "LGD-101792"


def folder(image_sku: str) -> str:
    return f"sorted-media/{image_sku[0:2]}/{image_sku[2:4]}/{image_sku[4:6]}/"


def key(image_sku: str, variation: int, digits: str = "100") -> str:
    return f"{folder(image_sku)}{image_sku}-{variation}a-{digits}.jpg"


def images(image_sku: str, *variations: int) -> SkuImages:
    """The index's answer for an Image_SKU: accepted images by variation, as s3index sorts them."""
    accepted = [
        AcceptedImage(image_sku, n, key(image_sku, n), f"etag{image_sku}{n}", 1000 + n, 800, 600,
                      "jpeg")
        for n in sorted(variations)
    ]  # fmt: skip
    return SkuImages(image_sku, folder(image_sku), accepted)


def variant(sku: str, image_sku: str, state: ImageSkuState = ImageSkuState.OK,
            title: str | None = None) -> Variant:  # fmt: skip
    return Variant(sku, GROUP, image_sku, state, title)


def group(*variants: Variant, group_id: str = GROUP) -> CatalogGroup:
    return CatalogGroup(group_id, list(variants))


def index_of(*answers: SkuImages) -> dict[str, SkuImages]:
    return {a.image_sku: a for a in answers}


RULES = PlanRules()


# -- media: which images, in which order ---------------------------------------------------------


def test_media_follow_image_skus_in_order_of_first_appearance_then_variation() -> None:
    g = group(variant("A1", "222222"), variant("A2", "111111"), variant("A3", "222222"))
    plan = plan_group(g, index_of(images("111111", 1, 2), images("222222", 1, 3)), RULES)

    assert [(m.image_sku, m.variation) for m in plan.media] == [
        ("222222", 1),
        ("222222", 3),
        ("111111", 1),
        ("111111", 2),
    ]
    assert [m.position for m in plan.media] == [1, 2, 3, 4]


def test_an_image_sku_shared_by_several_variants_is_uploaded_once() -> None:
    g = group(variant("A1", "333333"), variant("A2", "333333"), variant("A3", "333333"))
    plan = plan_group(g, index_of(images("333333", 1, 2)), RULES)

    assert [m.s3_key for m in plan.media] == [key("333333", 1), key("333333", 2)]


def test_an_image_carries_its_s3_object_identity_and_size() -> None:
    plan = plan_group(group(variant("A1", "444444")), index_of(images("444444", 2)), RULES)

    (image,) = plan.media
    assert (image.s3_key, image.etag, image.width, image.height, image.size) == (
        key("444444", 2),
        "etag4444442",
        800,
        600,
        1002,
    )


def test_image_skus_of_empty_or_invalid_catalog_values_bring_no_media() -> None:
    g = group(
        variant("A1", "", ImageSkuState.EMPTY),
        variant("A2", "55/55", ImageSkuState.INVALID),
        variant("A3", "666666"),
    )
    # Even if the index had an answer for the invalid value, it must not be used.
    index = index_of(images("666666", 1), SkuImages("55/55", "x/", images("555555", 1).accepted))
    plan = plan_group(g, index, RULES)

    assert [m.image_sku for m in plan.media] == ["666666"]


# -- alt text, handle, title ---------------------------------------------------------------------


def test_alt_text_is_image_sku_and_variation_by_default() -> None:
    plan = plan_group(group(variant("A1", "827749")), index_of(images("827749", 1, 2)), RULES)

    assert [m.alt for m in plan.media] == ["827749 - Image 1", "827749 - Image 2"]


def test_alt_template_may_use_position_and_group_id() -> None:
    rules = PlanRules(alt_template="{group_id} #{position} ({image_sku}/{variation})")
    g = group(variant("A1", "222222"), variant("A2", "111111"))
    plan = plan_group(g, index_of(images("111111", 4), images("222222", 2)), rules)

    assert [m.alt for m in plan.media] == [
        "LGD-101792 #1 (222222/2)",
        "LGD-101792 #2 (111111/4)",
    ]


@pytest.mark.parametrize(
    ("template", "group_id", "handle"),
    [
        ("{group_id}", "LGD-101792", "lgd-101792"),
        ("{group_id}", "  GID 10/0288__x ", "gid-10-0288-x"),
        ("jewel-{group_id}", "Ring.ÄÖ-7", "jewel-ring-7"),
    ],
)
def test_handle_is_the_template_lower_cased_with_other_characters_as_single_dashes(
    template: str, group_id: str, handle: str
) -> None:
    assert PlanRules(handle_template=template).handle(group_id) == handle


def test_plan_handle_comes_from_the_group_id() -> None:
    plan = plan_group(group(variant("A1", "111111")), index_of(images("111111", 1)), RULES)
    assert plan.handle == "lgd-101792"
    assert plan.group_id == GROUP


def test_title_is_the_first_variant_title_else_the_group_id() -> None:
    titled = group(variant("A1", "111111"), variant("A2", "111111", title="Gold ring"))
    untitled = group(variant("A1", "111111"))
    index = index_of(images("111111", 1))

    assert plan_group(titled, index, RULES).title == "Gold ring"
    assert plan_group(untitled, index, RULES).title == GROUP


@pytest.mark.parametrize(
    ("field", "template"),
    [
        ("handle_template", "{group}"),
        ("handle_template", "{group_id"),
        ("alt_template", "{sku} - Image {variation}"),
        ("alt_template", "{0}"),
    ],
)
def test_a_template_with_an_unknown_field_is_refused_before_any_work(
    field: str, template: str
) -> None:
    with pytest.raises(ConfigError, match=field):
        PlanRules(**{field: template})


# -- each variant's primary image ----------------------------------------------------------------


def test_a_variant_gets_the_first_image_of_its_own_set() -> None:
    g = group(variant("A1", "111111"), variant("A2", "222222"), variant("A3", "111111"))
    plan = plan_group(g, index_of(images("111111", 2, 3), images("222222", 1, 5)), RULES)

    assert [(v.sku, v.image_sku, v.image_s3_key) for v in plan.variants] == [
        ("A1", "111111", key("111111", 2)),
        ("A2", "222222", key("222222", 1)),
        ("A3", "111111", key("111111", 2)),
    ]
    assert plan.missing == []


def test_variants_keep_catalog_order() -> None:
    g = group(variant("Z9", "111111"), variant("A1", "111111"), variant("M5", "111111"))
    plan = plan_group(g, index_of(images("111111", 1)), RULES)

    assert [v.sku for v in plan.variants] == ["Z9", "A1", "M5"]


# -- missing images: the reasons of the missing-images log ----------------------------------------


def test_a_variant_without_image_sku_is_missing_with_no_image_sku() -> None:
    g = group(variant("A1", "", ImageSkuState.EMPTY), variant("A2", "111111"))
    plan = plan_group(g, index_of(images("111111", 1)), RULES)

    assert plan.variants[0].image_s3_key is None
    (missing,) = plan.missing
    assert (missing.group_id, missing.sku, missing.image_sku, missing.s3_path, missing.reason) == (
        GROUP,
        "A1",
        "",
        "",
        MissingReason.NO_IMAGE_SKU,
    )


def test_a_variant_with_an_invalid_image_sku_is_missing_with_invalid_image_sku() -> None:
    g = group(variant("A1", "12 34", ImageSkuState.INVALID))
    plan = plan_group(g, {}, RULES)

    assert plan.media == []
    assert [(m.sku, m.image_sku, m.s3_path, m.reason) for m in plan.missing] == [
        ("A1", "12 34", "", MissingReason.INVALID_IMAGE_SKU)
    ]


def test_an_image_sku_with_no_objects_is_missing_with_its_folder() -> None:
    g = group(variant("A1", "777777"), variant("A2", "111111"))
    plan = plan_group(
        g, index_of(SkuImages("777777", folder("777777")), images("111111", 1)), RULES
    )

    assert plan.variants[0].image_s3_key is None
    assert plan.variants[1].image_s3_key == key("111111", 1)
    assert [(m.sku, m.s3_path, m.reason, m.detail) for m in plan.missing] == [
        ("A1", "sorted-media/77/77/77/", MissingReason.NO_OBJECTS, "")
    ]


def test_names_that_all_fail_the_pattern_are_missing_with_no_match() -> None:
    rejected = [
        RejectedFile(folder("777777") + "777777-1b-1.jpg", Rejection.SUFFIX),
        RejectedFile(folder("777777") + "777777.jpg", Rejection.PATTERN),
    ]
    answer = SkuImages("777777", folder("777777"), [], rejected)
    plan = plan_group(group(variant("A1", "777777")), index_of(answer), RULES)

    (missing,) = plan.missing
    assert missing.reason is MissingReason.NO_MATCH
    assert missing.detail == (
        "1 name does not match [Image_SKU]-[N]a-[digits].[ext]; 1 variation suffix is not 'a'"
    )


def test_images_that_are_all_invalid_are_missing_with_all_invalid_and_counts() -> None:
    rejected = [
        RejectedFile(folder("777777") + "777777-1a-1.jpg", Rejection.TOO_SMALL, "100x100"),
        RejectedFile(folder("777777") + "777777-2a-1.jpg", Rejection.TOO_SMALL, "50x50"),
        RejectedFile(folder("777777") + "777777-3a-1.txt", Rejection.EXTENSION),
    ]
    answer = SkuImages("777777", folder("777777"), [], rejected)
    plan = plan_group(group(variant("A1", "777777")), index_of(answer), RULES)

    (missing,) = plan.missing
    assert missing.reason is MissingReason.ALL_INVALID
    assert missing.detail == (
        "1 not an accepted image type (.jpg .jpeg .png .gif .webp); 2 smaller than the minimum size"
    )
    assert plan.media == []


def test_rejected_files_next_to_accepted_ones_do_not_make_a_variant_missing() -> None:
    answer = images("111111", 1)
    answer.rejected.append(RejectedFile(key("111111", 2), Rejection.TOO_SMALL))
    plan = plan_group(group(variant("A1", "111111")), index_of(answer), RULES)

    assert plan.missing == []
    assert [m.variation for m in plan.media] == [1]


# -- deferral: S3 could not say what the images are ------------------------------------------------


def test_a_group_with_an_unreadable_image_is_deferred_naming_the_key() -> None:
    answer = images("111111", 1)
    answer.rejected.append(RejectedFile(key("111111", 2), Rejection.UNREADABLE, "503 SlowDown"))
    plan = plan_group(group(variant("A1", "111111")), index_of(answer), RULES)

    assert plan.deferred == f"S3 could not read {key('111111', 2)} (503 SlowDown)"


def test_other_rejections_do_not_defer_a_group() -> None:
    answer = images("111111", 1)
    answer.rejected += [
        RejectedFile(key("111111", 2), Rejection.CHANGED, "deleted"),
        RejectedFile(key("111111", 3), Rejection.CORRUPT),
    ]
    plan = plan_group(group(variant("A1", "111111")), index_of(answer), RULES)

    assert plan.deferred is None


def test_an_unreadable_file_of_an_invalid_image_sku_does_not_defer_the_group() -> None:
    bad = SkuImages("12 34", "x/", [], [RejectedFile("x/y.jpg", Rejection.UNREADABLE, "reset")])
    g = group(variant("A1", "12 34", ImageSkuState.INVALID), variant("A2", "111111"))
    plan = plan_group(g, {"12 34": bad, "111111": images("111111", 1)}, RULES)

    assert plan.deferred is None


def test_a_new_plan_is_neither_deferred_nor_unchanged() -> None:
    plan = plan_group(group(variant("A1", "111111")), index_of(images("111111", 1)), RULES)

    assert (plan.deferred, plan.unchanged) == (None, False)
