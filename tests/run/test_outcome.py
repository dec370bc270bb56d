"""Unit tests of run/outcome.py: each group's manifest record and failure records, built from the
productSet line's result, phase 2's lines and the export; the state file update; the shop counts.

Plans, products, results and input files are built by hand (files in tmp_path); no shop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from bulkimg.formats.failures import (
    LineError,
    MediaFailure,
    VariantImageMissing,
)
from bulkimg.formats.lines import (
    FileSetInput,
    MoveInput,
    OptionValue,
    ProductOption,
    ProductSetLine,
    ProductSetProduct,
    ProductSetVariant,
    ReorderMediaLine,
    VariantMediaLine,
    VariantMediaPair,
    VariantOptionValue,
    write_lines,
)
from bulkimg.formats.manifest import ManifestMedia, ManifestRecord, ManifestVariant
from bulkimg.formats.plan import PlanMedia, PlanMissing, PlanRecord, PlanVariant
from bulkimg.formats.resolution import ResolvedGroup
from bulkimg.formats.run import OperationRecord, Phase
from bulkimg.formats.state import KnownMedia, ProductState, StateStore
from bulkimg.plan.names import shopify_filename
from bulkimg.run import outcome
from bulkimg.run.phase2 import (
    REORDER_DOCUMENT,
    VARIANT_DETACH_DOCUMENT,
    VARIANT_MEDIA_DOCUMENT,
    Phase2Line,
)
from bulkimg.shopify.results import ExportedMedia, ExportedProduct, ExportedVariant, LineResult
from bulkimg.statuses import MediaStatus

CDN = "https://cdn.shopify.com/s/files/1/0001/files"
PRODUCT = "gid://shopify/Product/1"
KEY1 = "sorted-media/82/77/49/827749-1a-111.jpg"
KEY2 = "sorted-media/82/77/49/827749-2a-222.jpg"
ETAG1, ETAG2 = "e1" * 8, "e2" * 8
SIGNED = "https://b.s3.amazonaws.com/k.jpg?X-Amz-Credential=AKIAXYZ&X-Amz-Signature=cafe1234"


def mid(n: int) -> str:
    return f"gid://shopify/MediaImage/{n}"


def vid(n: int) -> str:
    return f"gid://shopify/ProductVariant/{n}"


def plan(
    status: Literal["planned", "deferred", "unchanged"] = "planned",
    deferred_reason: str | None = None,
    missing: list[PlanMissing] | None = None,
) -> PlanRecord:
    media = [
        PlanMedia(position=1, s3_key=KEY1, image_sku="827749", variation=1, width=900,
                  height=900, etag=ETAG1, alt="827749 - Image 1"),
        PlanMedia(position=2, s3_key=KEY2, image_sku="827749", variation=2, width=900,
                  height=900, etag=ETAG2, alt="827749 - Image 2"),
    ]  # fmt: skip
    variants = [PlanVariant(sku=s, image_sku="827749", image_s3_key=KEY1) for s in ("A1", "A2")]
    return PlanRecord(group_id="LGD-1", handle="lgd-1", title="Ring", status=status,
                      deferred_reason=deferred_reason, media=media, variants=variants,
                      missing=missing or [])  # fmt: skip


def exported(
    shows: dict[str, list[str]] | None = None,
    status1: str = "READY",
    errors1: list[LineError] | None = None,
) -> ExportedProduct:
    shows = shows or {}
    return ExportedProduct(
        PRODUCT, "lgd-1",
        [ExportedMedia(mid(1), "827749 - Image 1", status1,
                       f"{CDN}/{shopify_filename(KEY1, ETAG1)}", errors1 or []),
         ExportedMedia(mid(2), "827749 - Image 2", "READY",
                       f"{CDN}/{shopify_filename(KEY2, ETAG2)}")],
        [ExportedVariant(vid(1), "A1", shows.get("A1", [])),
         ExportedVariant(vid(2), "A2", shows.get("A2", []))],
    )  # fmt: skip


def created() -> tuple[None, LineResult]:
    return None, LineResult(0, ran=True, product_id=PRODUCT)


def attach(*numbers: int, media: int = 1) -> VariantMediaLine:
    return VariantMediaLine(
        product_id=PRODUCT,
        variant_media=[
            VariantMediaPair(variant_id=vid(n), media_ids=[mid(media)]) for n in numbers
        ],
    )


def entry(
    document: str, variables: VariantMediaLine | ReorderMediaLine, result: LineResult, line: int = 1
) -> Phase2Line:
    return Phase2Line(document, variables, result, "phase2-run.jsonl", line)


OK = LineResult(0, ran=True)


def failed(code: str) -> LineResult:
    return LineResult(0, ran=True, errors=[LineError(code=code, message=f"{code} here")])


def variants_of(record: ManifestRecord) -> dict[str, str | None]:
    return {v.sku: v.media_id for v in record.variants}


# -- shop counts ---------------------------------------------------------------------------------


def resolved(action: str, **counts: int) -> ResolvedGroup:
    return ResolvedGroup.model_validate(
        {"group_id": "G", "handle": "g", "action": action, "match": "handle", **counts}
    )


def test_shop_counts_are_zero_for_every_count_when_nothing_resolved() -> None:
    counts = outcome.shop_counts([])
    assert len(counts) == 11 and set(counts.values()) == {0}


def test_shop_counts_add_up_products_by_action_and_images_by_fate() -> None:
    counts = outcome.shop_counts([
        resolved("create", uploaded=3),
        resolved("update", adopted=2, uploaded=1, replaced=1, removed=1, kept_foreign=4,
                 variant_images_swapped=2, variant_images_kept=1),
        resolved("update", replaced=2, variant_images_swapped=1, variant_images_set=5),
        resolved("conflict"), resolved("not_created"), resolved("held"), resolved("unchanged"),
    ])  # fmt: skip
    assert counts == {
        "products_created": 1, "products_conflict": 1, "products_not_created": 1,
        "products_held": 1, "images_adopted": 2, "images_uploaded": 4, "images_replaced": 3,
        "images_removed": 1, "images_kept_foreign": 4, "variant_images_swapped": 3,
        "variant_images_kept": 1,
    }  # fmt: skip


# -- groups that sent nothing or whose productSet line failed -------------------------------------


def test_a_deferred_group_gets_a_retryable_build_failure_with_its_reason() -> None:
    group = plan("deferred", deferred_reason="S3 listing timed out")
    record, failures = outcome.group_outcome(group, None, {}, {})
    assert [(f.phase, f.group_id, f.handle, f.retryable) for f in failures] == [
        ("build", "LGD-1", "lgd-1", True)
    ]
    assert failures[0].errors == [LineError(code="DEFERRED", message="S3 listing timed out")]
    assert failures[0].file is None and failures[0].variables is None
    assert record.status == "failed" and record.product_id is None
    assert [m.id for m in record.media] == [None, None]


def test_a_planned_group_with_no_productset_line_is_a_build_failure() -> None:
    record, failures = outcome.group_outcome(plan(), None, {"lgd-1": exported()}, {})
    assert [f.errors[0].message for f in failures] == ["no productSet line for this group"]
    assert record.status == "failed" and record.product_id is None


def product_set_line(source: str) -> ProductSetLine:
    return ProductSetLine(input=ProductSetProduct(
        handle="lgd-1", title="Ring",
        product_options=[ProductOption(name="Size", values=[OptionValue(name="7")])],
        variants=[ProductSetVariant(
            sku="A1", option_values=[VariantOptionValue(option_name="Size", name="7")])],
        files=[FileSetInput(original_source=source, alt="827749 - Image 1", filename="a.jpg")],
    ))  # fmt: skip


def product_set_op(tmp_path: Path) -> OperationRecord:
    path = tmp_path / "productset-1.jsonl"
    write_lines(path, [product_set_line("https://b.example/other.jpg"), product_set_line(SIGNED)])
    return OperationRecord(phase=Phase.PRODUCT_SET, input_file=str(path), input_sha256="0" * 64,
                           input_lines=2, document="product_set", status="COMPLETED")  # fmt: skip


def test_a_failed_productset_line_is_recorded_with_its_redacted_variables(tmp_path: Path) -> None:
    error = LineError(code="INVALID", field=["input"], message=f"could not fetch {SIGNED}")
    result = LineResult(1, ran=True, errors=[error])
    record, failures = outcome.group_outcome(plan(), (product_set_op(tmp_path), result), {}, {})
    [failure] = failures
    assert (failure.phase, failure.file, failure.line) == ("product_set", "productset-1.jsonl", 2)
    redacted = SIGNED.replace("AKIAXYZ", "REDACTED").replace("cafe1234", "REDACTED")
    assert failure.variables == product_set_line(redacted)
    assert failure.errors[0].message == f"could not fetch {redacted}"
    assert failure.retryable is False
    assert record.status == "failed" and record.variants[0].id is None


def test_a_productset_line_that_did_not_run_is_retryable(tmp_path: Path) -> None:
    result = LineResult(0, errors=[LineError(code="NOT_RUN", message="not run")])
    _, failures = outcome.group_outcome(plan(), (product_set_op(tmp_path), result), {}, {})
    assert [(f.line, f.retryable) for f in failures] == [(1, True)]


def test_a_failed_line_whose_input_file_is_gone_has_no_variables(tmp_path: Path) -> None:
    op = product_set_op(tmp_path)
    Path(op.input_file).unlink()
    _, failures = outcome.group_outcome(plan(), (op, failed("THROTTLED")), {}, {})
    assert [(f.file, f.line, f.variables, f.retryable) for f in failures] == [
        ("productset-1.jsonl", 1, None, True)
    ]


def test_a_failed_result_with_no_operation_has_no_file_or_line() -> None:
    _, failures = outcome.group_outcome(plan(), (None, failed("INVALID")), {}, {})
    assert [(f.phase, f.file, f.line, f.variables) for f in failures] == [
        ("product_set", None, None, None)
    ]


# -- groups whose productSet line succeeded -------------------------------------------------------


def test_a_group_whose_variants_got_their_images_is_done_with_media_and_variant_images() -> None:
    phase2 = {PRODUCT: [entry(VARIANT_MEDIA_DOCUMENT, attach(1, 2), OK)]}
    record, failures = outcome.group_outcome(plan(), created(), {"lgd-1": exported()}, phase2)
    assert failures == []
    assert record == ManifestRecord(
        group_id="LGD-1", product_id=PRODUCT, handle="lgd-1", status="done",
        media=[ManifestMedia(id=mid(1), s3_key=KEY1, etag=ETAG1, status=MediaStatus.READY),
               ManifestMedia(id=mid(2), s3_key=KEY2, etag=ETAG2, status=MediaStatus.READY)],
        variants=[ManifestVariant(sku="A1", id=vid(1), media_id=mid(1), s3_key=KEY1),
                  ManifestVariant(sku="A2", id=vid(2), media_id=mid(1), s3_key=KEY1)],
    )  # fmt: skip


def test_variants_already_showing_their_image_need_no_phase2_line() -> None:
    product = exported({"A1": [mid(1)], "A2": [mid(1)]})
    record, failures = outcome.group_outcome(plan(), created(), {"lgd-1": product}, {})
    assert failures == [] and record.status == "done"
    assert variants_of(record) == {"A1": mid(1), "A2": mid(1)}


def test_phase2_lines_of_another_product_are_not_this_groups() -> None:
    other = {"gid://shopify/Product/2": [entry(VARIANT_MEDIA_DOCUMENT, attach(1, 2), OK)]}
    product = exported({"A1": [mid(1)], "A2": [mid(1)]})
    record, failures = outcome.group_outcome(plan(), created(), {"lgd-1": product}, other)
    assert failures == [] and variants_of(record) == {"A1": mid(1), "A2": mid(1)}


def test_a_failed_attach_line_is_a_variant_media_failure_and_its_variants_show_nothing() -> None:
    product = exported({"A1": [mid(2)]})
    line = attach(1, 2)
    phase2 = {PRODUCT: [entry(VARIANT_MEDIA_DOCUMENT, line, failed("THROTTLED"), line=3)]}
    record, failures = outcome.group_outcome(plan(), created(), {"lgd-1": product}, phase2)
    assert [(f.phase, f.file, f.line, f.variables, f.retryable) for f in failures] == [
        ("variant_media", "phase2-run.jsonl", 3, line, True)
    ]
    assert record.status == "failed" and variants_of(record) == {"A1": None, "A2": None}


def test_a_refused_attach_line_is_not_retryable() -> None:
    phase2 = {PRODUCT: [entry(VARIANT_MEDIA_DOCUMENT, attach(1), failed("INVALID"))]}
    _, failures = outcome.group_outcome(plan(), created(), {"lgd-1": exported()}, phase2)
    assert [(f.phase, f.retryable) for f in failures] == [("variant_media", False)]


def test_a_detached_image_leaves_the_variant_until_an_attach_gives_it_another() -> None:
    product = exported({"A1": [mid(2)], "A2": [mid(2)]})
    phase2 = {PRODUCT: [entry(VARIANT_DETACH_DOCUMENT, attach(1, 2, media=2), OK),
                        entry(VARIANT_MEDIA_DOCUMENT, attach(1), OK)]}  # fmt: skip
    record, failures = outcome.group_outcome(plan(), created(), {"lgd-1": product}, phase2)
    assert variants_of(record) == {"A1": mid(1), "A2": None}
    assert failures == [] and record.status == "done"


def test_a_failed_detach_is_a_variant_detach_failure_and_the_variant_keeps_its_image() -> None:
    product = exported({"A1": [mid(2)]})
    line = attach(1, media=2)
    phase2 = {PRODUCT: [entry(VARIANT_DETACH_DOCUMENT, line, failed("TIMEOUT"))]}
    record, failures = outcome.group_outcome(plan(), created(), {"lgd-1": product}, phase2)
    assert [(f.phase, f.variables, f.retryable) for f in failures] == [
        ("variant_detach", line, True)
    ]
    assert record.status == "failed" and variants_of(record)["A1"] == mid(2)
    assert record.variants[0].s3_key == KEY2


def test_a_failed_reorder_is_a_reorder_failure_never_retryable() -> None:
    line = ReorderMediaLine(id=PRODUCT, moves=[MoveInput(id=mid(1), new_position="0")])
    phase2 = {PRODUCT: [entry(REORDER_DOCUMENT, line, failed("THROTTLED"))]}
    product = exported({"A1": [mid(1)], "A2": [mid(1)]})
    record, failures = outcome.group_outcome(plan(), created(), {"lgd-1": product}, phase2)
    assert [(f.phase, f.variables, f.retryable) for f in failures] == [("reorder", line, False)]
    assert record.status == "failed"


def test_a_successful_reorder_changes_no_variant_image() -> None:
    line = ReorderMediaLine(id=PRODUCT, moves=[MoveInput(id=mid(1), new_position="0")])
    product = exported({"A1": [mid(1)], "A2": [mid(1)]})
    record, failures = outcome.group_outcome(
        plan(), created(), {"lgd-1": product}, {PRODUCT: [entry(REORDER_DOCUMENT, line, OK)]}
    )
    assert failures == [] and variants_of(record) == {"A1": mid(1), "A2": mid(1)}


def test_an_image_shopify_failed_to_process_is_a_retryable_media_failure_with_its_s3_key() -> None:
    errors = [LineError(code="IMAGE_DOWNLOAD_FAILURE", message="404")]
    product = exported({"A1": [mid(1)], "A2": [mid(1)]}, status1="FAILED", errors1=errors)
    record, failures = outcome.group_outcome(plan(), created(), {"lgd-1": product}, {})
    [failure] = failures
    assert (failure.phase, failure.retryable, failure.s3_key) == ("variant_media", True, KEY1)
    assert failure.variables == MediaFailure(product_id=PRODUCT, media_id=mid(1), s3_key=KEY1)
    assert failure.errors == [LineError(code="MEDIA_FAILED", message="IMAGE_DOWNLOAD_FAILURE: 404")]
    assert record.status == "failed" and record.media[0].status is MediaStatus.FAILED


def test_a_failed_image_without_errors_says_processing_failed() -> None:
    product = exported({"A1": [mid(1)], "A2": [mid(1)]}, status1="FAILED")
    _, failures = outcome.group_outcome(plan(), created(), {"lgd-1": product}, {})
    assert [e.message for f in failures for e in f.errors] == ["media processing failed"]


def test_an_image_not_ready_after_the_wait_is_a_media_not_ready_failure() -> None:
    product = exported({"A1": [mid(1)], "A2": [mid(1)]}, status1="PROCESSING")
    record, failures = outcome.group_outcome(plan(), created(), {"lgd-1": product}, {})
    assert [(e.code, e.message) for f in failures for e in f.errors] == [
        ("MEDIA_NOT_READY", "media still PROCESSING after the wait")
    ]
    assert record.media[0].status is MediaStatus.PROCESSING


def test_a_media_status_the_manifest_does_not_know_is_recorded_as_none() -> None:
    product = exported({"A1": [mid(1)], "A2": [mid(1)]}, status1="WEIRD")
    record, _ = outcome.group_outcome(plan(), created(), {"lgd-1": product}, {})
    assert [m.status for m in record.media] == [None, MediaStatus.READY]


def test_a_variant_not_on_the_product_is_a_not_found_failure_with_its_s3_key() -> None:
    product = exported({"A1": [mid(1)]})
    product.variants = product.variants[:1]
    record, failures = outcome.group_outcome(plan(), created(), {"lgd-1": product}, {})
    [failure] = failures
    assert (failure.phase, failure.retryable, failure.s3_key) == ("variant_media", True, KEY1)
    assert failure.variables == VariantImageMissing(
        product_id=PRODUCT, sku="A2", s3_key=KEY1, variant_id=None
    )
    assert failure.errors[0].code == "NOT_FOUND"
    assert record.status == "failed" and record.variants[1].id is None


def test_a_product_missing_from_the_export_fails_every_variant_with_an_image() -> None:
    record, failures = outcome.group_outcome(plan(), created(), {}, {})
    assert [f.variables for f in failures] == [
        VariantImageMissing(product_id=None, sku=sku, s3_key=KEY1, variant_id=None)
        for sku in ("A1", "A2")
    ]
    assert record.product_id is None and [m.id for m in record.media] == [None, None]


def test_an_image_missing_from_the_product_fails_its_variants_with_the_variant_id() -> None:
    product = exported()
    product.media = product.media[1:]
    _, failures = outcome.group_outcome(plan(), created(), {"lgd-1": product}, {})
    assert [f.variables for f in failures] == [
        VariantImageMissing(product_id=PRODUCT, sku=sku, s3_key=KEY1, variant_id=variant)
        for sku, variant in (("A1", vid(1)), ("A2", vid(2)))
    ]


def test_a_variant_keeping_another_image_is_not_a_failure() -> None:
    product = exported({"A1": [mid(2)], "A2": [mid(1)]})
    record, failures = outcome.group_outcome(plan(), created(), {"lgd-1": product}, {})
    assert failures == [] and record.status == "done"
    assert [(v.media_id, v.s3_key) for v in record.variants] == [(mid(2), KEY2), (mid(1), KEY1)]


def test_a_group_with_missing_images_and_no_failure_is_missing_not_done() -> None:
    group = plan(missing=[PlanMissing(sku="A3", image_sku="999", reason="no_image")])
    product = exported({"A1": [mid(1)], "A2": [mid(1)]})
    record, failures = outcome.group_outcome(group, created(), {"lgd-1": product}, {})
    assert failures == [] and record.status == "missing"


def test_media_are_matched_with_the_resolution_so_a_deleted_copy_is_not_the_groups() -> None:
    product = exported({"A1": [mid(1)], "A2": [mid(1)]})
    known = ResolvedGroup(group_id="LGD-1", handle="lgd-1", action="update", match="handle",
                          product_id=PRODUCT, dropped=[mid(2)])  # fmt: skip
    record, _ = outcome.group_outcome(plan(), created(), {"lgd-1": product}, {}, known)
    assert [m.id for m in record.media] == [mid(1), None]


def test_a_canary_failure_is_not_retryable_and_names_the_problem() -> None:
    failure = outcome.canary_failure(plan(), "the title changed")
    assert (failure.phase, failure.group_id, failure.retryable) == ("canary", "LGD-1", False)
    assert failure.errors == [LineError(code="CANARY_NOT_ONLY_IMAGES", message="the title changed")]


# -- the state file ------------------------------------------------------------------------------


def test_an_unchanged_group_is_reported_from_the_state_file(tmp_path: Path) -> None:
    with StateStore(tmp_path / "state.sqlite") as store:
        store.replace_products([ProductState("lgd-1", PRODUCT, [
            KnownMedia(mid(1), "827749", 1, ETAG1[:8], "READY"),
            KnownMedia(mid(2), "827749", 2, "deadbeef", "READY"),
            KnownMedia(mid(3), None, None, None, "READY"),
        ], {"A1": (vid(1), mid(1)), "A2": (vid(2), None)})])  # fmt: skip
        record = outcome.unchanged_outcome(plan("unchanged"), store)
    assert record.status == "done" and record.product_id == PRODUCT
    assert [(m.id, m.status) for m in record.media] == [(mid(1), MediaStatus.READY), (None, None)]
    assert [(v.id, v.media_id, v.s3_key) for v in record.variants] == [
        (vid(1), mid(1), KEY1), (vid(2), None, None)
    ]  # fmt: skip


def test_an_unchanged_group_gone_from_the_state_file_is_reported_as_planned(
    tmp_path: Path,
) -> None:
    group = plan("unchanged", missing=[PlanMissing(sku="A3", image_sku="9", reason="no_image")])
    with StateStore(tmp_path / "state.sqlite") as store:
        record = outcome.unchanged_outcome(group, store)
    assert record.status == "missing" and record.product_id is None
    assert [v.id for v in record.variants] == [None, None]


def test_the_state_file_records_the_variant_images_the_manifest_says_they_show(
    tmp_path: Path,
) -> None:
    product = exported({"A1": [mid(2)]})
    manifest = [ManifestRecord(group_id="LGD-1", product_id=PRODUCT, handle="lgd-1",
                               status="done",
                               variants=[ManifestVariant(sku="A1", id=vid(1), media_id=mid(1)),
                                         ManifestVariant(sku="A2", id=None)])]  # fmt: skip
    with StateStore(tmp_path / "state.sqlite") as store:
        outcome.record_state(store, {"LGD-1": plan()}, {"lgd-1": product}, manifest)
        known = store.product("lgd-1")
    assert known is not None and known.product_id == PRODUCT
    assert known.variants == {"A1": (vid(1), mid(1)), "A2": (vid(2), None)}
    assert [(m.media_id, m.s3_key, m.etag) for m in known.media] == [
        (mid(1), KEY1, ETAG1), (mid(2), KEY2, ETAG2)
    ]  # fmt: skip
