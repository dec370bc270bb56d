"""adoption: on a product that exists, bulkimg keeps, adopts, replaces or uploads its own images
and never drops one it does not own."""

from __future__ import annotations

from bulkimg.formats.plan import PlanMedia
from bulkimg.shop.adoption import Fate, FileSlot, decide
from bulkimg.shopify.results import ExportedMedia

ETAG = "b006dc28aa11"
CDN = "https://cdn.shopify.com/s/files/1/0001/files"


def planned(variation: int, etag: str = ETAG, size: int = 1200) -> PlanMedia:
    key = f"sorted-media/11/02/19/1102192-{variation}a-10{variation}.jpg"
    alt = f"1102192 - Image {variation}"
    return PlanMedia(
        position=variation, s3_key=key, image_sku="1102192", variation=variation,
        width=size, height=size, etag=etag, alt=alt,
    )  # fmt: skip


def media(
    mid: int, name: str | None, size: int = 1200, status: str = "READY", alt: str = ""
) -> ExportedMedia:
    url = f"{CDN}/{name}?v=1" if name else None
    return ExportedMedia(f"gid://shopify/MediaImage/{mid}", alt, status, url, [], size, size)


PLAN = [planned(1), planned(2)]


def test_the_old_workflows_upload_of_the_same_s3_object_is_adopted_not_uploaded_again() -> None:
    shop = [
        media(1, "1102192-1a-101.jpg"),
        media(2, "1102192-2a-102_0a1b2c3d-1111-2222-3333-444455556666.jpg"),
    ]
    decision = decide(PLAN, shop)
    assert decision.fates == {shop[0].id: Fate.ADOPTED, shop[1].id: Fate.ADOPTED}
    assert decision.uploads == [] and not decision.changed
    assert decision.media_of == {PLAN[0].s3_key: shop[0].id, PLAN[1].s3_key: shop[1].id}


def test_a_copy_whose_dimensions_differ_from_s3_is_out_of_date_and_replaced() -> None:
    shop = [
        media(7, "lifestyle.jpg"),
        media(1, "1102192-1a-101.jpg", size=800),
        media(2, "1102192-2a-102.jpg"),
    ]
    decision = decide(PLAN, shop)
    assert decision.fates[shop[1].id] is Fate.REPLACED and decision.uploads == [PLAN[0].s3_key]
    assert decision.files == [
        FileSlot(s3_key=PLAN[0].s3_key),
        FileSlot(media_id=shop[2].id),
        FileSlot(media_id=shop[0].id),
    ]  # fmt: skip


def test_bulkimgs_own_file_of_an_older_s3_version_is_replaced() -> None:
    shop = [media(1, "1102192-1a-101--deadbeef.jpg"), media(2, "1102192-2a-102--b006dc28.jpg")]
    decision = decide(PLAN, shop)
    assert decision.fates == {shop[0].id: Fate.REPLACED, shop[1].id: Fate.KEPT}
    assert decision.uploads == [PLAN[0].s3_key]


def test_bulkimgs_images_come_in_plan_order_and_every_foreign_image_follows() -> None:
    shop = [media(9, "on-model.jpg"), media(1, "1102192-1a-101.jpg"), media(8, "box.png")]
    decision = decide(PLAN, shop)
    assert decision.files == [
        FileSlot(media_id=shop[1].id), FileSlot(s3_key=PLAN[1].s3_key),
        FileSlot(media_id=shop[0].id), FileSlot(media_id=shop[2].id),
    ]  # fmt: skip
    assert decision.count(Fate.FOREIGN) == 2 and decision.count(Fate.ADOPTED) == 1


def test_a_product_with_only_foreign_images_gets_bulkimgs_first_in_plan_order() -> None:
    shop = [media(9, "on-model.jpg")]
    decision = decide(PLAN, shop)
    assert decision.files == [
        FileSlot(s3_key=PLAN[0].s3_key),
        FileSlot(s3_key=PLAN[1].s3_key),
        FileSlot(media_id=shop[0].id),
    ]  # fmt: skip


def test_a_second_copy_of_a_kept_image_is_removed_so_no_image_is_there_twice() -> None:
    stale_too = [media(1, "1102192-1a-101.jpg"), media(2, "1102192-1a-101.jpg", size=10)]
    assert decide(PLAN, stale_too).fates[stale_too[1].id] is Fate.REMOVED
    shop = [
        media(1, "1102192-1a-101.jpg"),
        media(2, "1102192-1a-101_0a1b2c3d-1111-2222-3333-444455556666.jpg"),
        media(3, "1102192-2a-102.jpg"),
    ]
    decision = decide(PLAN, shop)
    assert decision.fates[shop[1].id] is Fate.REMOVED and decision.changed
    assert shop[1].id not in {f.media_id for f in decision.files}


def test_bulkimgs_own_file_no_longer_wanted_is_removed_but_an_old_workflow_one_stays() -> None:
    shop = [
        media(1, "1102192-1a-101.jpg"),
        media(2, "1102192-2a-102.jpg"),
        media(3, "1102192-3a-103--b006dc28.jpg"),
        media(4, "1102192-4a-104.jpg"),
    ]
    decision = decide(PLAN, shop)
    assert decision.fates[shop[2].id] is Fate.REMOVED
    assert decision.fates[shop[3].id] is Fate.FOREIGN


def test_a_failed_image_with_bulkimgs_alt_is_replaced_and_a_processing_one_is_not_sent_twice() -> (
    None
):
    shop = [
        media(1, None, status="FAILED", alt=PLAN[0].alt),
        media(2, None, status="PROCESSING", alt=PLAN[1].alt),
    ]
    decision = decide(PLAN, shop)
    assert decision.fates == {shop[0].id: Fate.REPLACED, shop[1].id: Fate.KEPT}
    assert decision.uploads == [PLAN[0].s3_key]


def test_an_unprocessed_image_with_another_alt_is_foreign() -> None:
    shop = [media(1, None, status="PROCESSING", alt="On model")]
    assert decide(PLAN, shop).fates == {shop[0].id: Fate.FOREIGN}


def test_a_file_with_a_planned_s3_name_but_other_dimensions_is_an_out_of_date_copy() -> None:
    # Same S3 name, other size: treated as bulkimg's out-of-date copy (the old workflow's), the
    # merchant's lifestyle photos never carry an S3 object's name.
    shop = [media(1, "1102192-1a-101.jpg", size=640)]
    assert decide(PLAN, shop).fates == {shop[0].id: Fate.REPLACED}


def test_a_copy_with_the_same_dimensions_but_another_file_size_is_out_of_date() -> None:
    # The S3 object was re-exported at the same dimensions: Shopify's originalSource.fileSize
    # tells the old upload apart. Unknown sizes (either side) fall back to the dimensions.
    sized = [p.model_copy(update={"size": 50_000}) for p in PLAN]
    shop = [media(1, "1102192-1a-101.jpg"), media(2, "1102192-2a-102.jpg")]
    shop[0].file_size, shop[1].file_size = 48_000, 50_000
    decision = decide(sized, shop)
    assert decision.fates == {shop[0].id: Fate.REPLACED, shop[1].id: Fate.ADOPTED}
    shop[0].file_size = None
    assert decide(sized, shop).fates[shop[0].id] is Fate.ADOPTED
    assert decide(PLAN, [media(1, "1102192-1a-101.jpg")]).fates == {
        "gid://shopify/MediaImage/1": Fate.ADOPTED
    }
