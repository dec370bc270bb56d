"""A submit's outcome per group: its manifest record (done, failed or missing, with media and
variant images) and its failure records, from phase 1's and phase 2's results and the export;
the state file updated from that export (`record_state`) and the shop counts (`shop_counts`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bulkimg.formats.failures import (
    FailureRecord,
    LineError,
    MediaFailure,
    VariantImageMissing,
    failure_of,
)
from bulkimg.formats.lines import Line, ReorderMediaLine, parse_line
from bulkimg.formats.manifest import (
    GroupStatus,
    ManifestMedia,
    ManifestRecord,
    ManifestVariant,
)
from bulkimg.formats.plan import PlanRecord, PlanVariant
from bulkimg.formats.resolution import ResolvedGroup
from bulkimg.formats.run import OperationRecord
from bulkimg.formats.state import ProductState, StateStore
from bulkimg.redact import redact_url
from bulkimg.run.phase2 import (
    VARIANT_DETACH_DOCUMENT,
    Phase2Line,
    media_by_key,
)
from bulkimg.shop.state import product_state
from bulkimg.shopify.results import (
    ExportedMedia,
    ExportedProduct,
    ExportedVariant,
    LineResult,
)
from bulkimg.statuses import MediaStatus


def canary_failure(group: PlanRecord, problem: str) -> FailureRecord:
    error = LineError(code="CANARY_NOT_ONLY_IMAGES", message=problem)
    return failure_of("canary", group.group_id, group.handle, None, None, None, [error], False)


def shop_counts(resolved: Iterable[ResolvedGroup]) -> dict[str, int]:
    """What the run did to the shop's images, from the resolution (0s when nothing resolved)."""
    counts = dict.fromkeys(
        ("products_created", "products_conflict", "products_not_created", "images_adopted",
         "images_uploaded", "images_replaced", "images_removed", "images_kept_foreign",
         "variant_images_swapped", "variant_images_kept", "products_held"),
        0,
    )  # fmt: skip
    for group in resolved:
        if group.action in ("create", "conflict", "not_created", "held"):
            key = {"create": "created"}.get(group.action, group.action)
            counts[f"products_{key}"] += 1
        for name in ("adopted", "uploaded", "replaced", "removed", "kept_foreign"):
            counts[f"images_{name}"] += getattr(group, name)
        counts["variant_images_swapped"] += group.variant_images_swapped
        counts["variant_images_kept"] += group.variant_images_kept
    return counts


def unchanged_outcome(group: PlanRecord, shop_state: StateStore) -> ManifestRecord:
    """A group the build found already right on the shop: its entry, from the state file."""
    known = shop_state.product(group.handle)
    if known is None:  # the state changed since the build: report what the plan says
        return _manifest_entry(group, None, "missing" if group.missing else "done", {}, {})
    media: dict[str, ExportedMedia] = {}
    for want in group.media:
        match = next(
            (k for k in known.media if k.same_object(want.image_sku, want.variation, want.etag)),
            None,
        )
        if match is not None:
            media[want.s3_key] = ExportedMedia(match.media_id, want.alt, match.status, None)
    variants = [ExportedVariant(vid, sku) for sku, (vid, _) in known.variants.items()]
    attached = {vid: mid for vid, mid in known.variants.values() if mid}
    product = ExportedProduct(known.product_id, known.handle, [], variants)
    status: GroupStatus = "missing" if group.missing else "done"
    return _manifest_entry(group, product, status, media, attached)


def record_state(
    shop_state: StateStore,
    groups: dict[str, PlanRecord],
    products: dict[str, ExportedProduct],
    manifest: list[ManifestRecord],
) -> None:
    """Remember what the run's products hold now, variant images included."""
    plans = {g.handle: g for g in groups.values()}
    entries = {e.handle: e for e in manifest}

    def known(handle: str, product: ExportedProduct) -> ProductState:
        state = product_state(product, plans.get(handle))
        entry = entries.get(handle)
        for variant in entry.variants if entry else []:
            if variant.id:
                state.variants[variant.sku] = (variant.id, variant.media_id)
        return state

    shop_state.replace_products(known(h, p) for h, p in products.items())


def group_outcome(
    group: PlanRecord,
    phase1: tuple[OperationRecord | None, LineResult] | None,
    products: dict[str, ExportedProduct],
    phase2: dict[str, list[Phase2Line]],
    resolved: ResolvedGroup | None = None,
) -> tuple[ManifestRecord, list[FailureRecord]]:
    failures: list[FailureRecord] = []
    product = products.get(group.handle)
    if group.status == "deferred" or phase1 is None:
        reason = group.deferred_reason or "no productSet line for this group"
        failures.append(
            failure_of("build", group.group_id, group.handle, None, None, None,
                    [LineError(code="DEFERRED", message=reason)], True)
        )  # fmt: skip
        return _manifest_entry(group, None, "failed", {}, {}), failures
    op, result = phase1
    if not result.ok:
        file = Path(op.input_file).name if op else None
        variables = _input_line(op, result.line) if op else None
        failures.append(
            failure_of("product_set", group.group_id, group.handle, file,
                    result.line + 1 if op else None, variables, result.errors, result.retryable)
        )  # fmt: skip
        return _manifest_entry(group, None, "failed", {}, {}), failures
    product_id = product.id if product else (result.product_id or "")
    media = media_by_key(group, product, resolved) if product else {}
    attached = _attached(group, product, phase2.get(product_id, []), failures)
    failures.extend(_media_failures(group, product, media, attached))
    missing = bool(group.missing)
    status: GroupStatus = "failed" if failures else ("missing" if missing else "done")
    return _manifest_entry(group, product, status, media, attached), failures


def _attached(
    group: PlanRecord,
    product: ExportedProduct | None,
    lines: list[Phase2Line],
    failures: list[FailureRecord],
) -> dict[str, str]:
    """variant id -> media id attached (already, or by a successful phase 2 line)."""
    attached = {v.id: v.media_ids[0] for v in (product.variants if product else []) if v.media_ids}
    for document, variables, result, file, line in lines:
        if isinstance(variables, ReorderMediaLine):  # putting bulkimg's images first again
            if not result.ok:
                failures.append(
                    failure_of("reorder", group.group_id, group.handle, file, line, variables,
                            result.errors, False)
                )  # fmt: skip
            continue
        pairs = {p.variant_id: p.media_ids[0] for p in variables.variant_media}
        if document == VARIANT_DETACH_DOCUMENT:
            if result.ok:
                for variant_id in pairs:
                    attached.pop(variant_id, None)
            else:  # the variant keeps the image it shows: nothing is attached to it
                failures.append(
                    failure_of("variant_detach", group.group_id, group.handle, file, line,
                            variables, result.errors, result.retryable)
                )  # fmt: skip
            continue
        if result.ok:
            attached.update(pairs)
        else:
            for variant_id in pairs:
                attached.pop(variant_id, None)
            failures.append(
                failure_of("variant_media", group.group_id, group.handle, file, line, variables,
                        result.errors, result.retryable)
            )  # fmt: skip
    return attached


def _media_failures(
    group: PlanRecord,
    product: ExportedProduct | None,
    media: dict[str, ExportedMedia],
    attached: dict[str, str],
) -> list[FailureRecord]:
    """Images that failed on Shopify, and variants whose primary image could not be attached."""
    failures: list[FailureRecord] = []
    product_id = product.id if product else None

    def fail(
        code: str,
        message: str,
        variables: MediaFailure | VariantImageMissing,
        retryable: bool = True,
    ) -> None:
        failures.append(
            failure_of("variant_media", group.group_id, group.handle, None, None, variables,
                    [LineError(code=code, message=message)], retryable)
        )  # fmt: skip

    for m in group.media:
        image = media.get(m.s3_key)
        if image is None or image.status == "READY":
            continue
        what = MediaFailure(product_id=product_id, media_id=image.id, s3_key=m.s3_key)
        if image.status == "FAILED":
            fail("MEDIA_FAILED", _media_error(image), what)
        else:
            # Every image, not only variants' primary ones: "done" means all of them READY.
            fail("MEDIA_NOT_READY", f"media still {image.status} after the wait", what)
    variants = {v.sku: v for v in (product.variants if product else [])}
    for v in group.variants:
        key, variant = v.image_s3_key, variants.get(v.sku)
        image = media.get(key) if key else None
        if not key or (variant and image and attached.get(variant.id) == image.id):
            continue
        pair = VariantImageMissing(
            product_id=product_id, sku=v.sku, s3_key=key, variant_id=variant.id if variant else None
        )
        if variant is None or image is None:
            fail("NOT_FOUND", "variant or image not on the product after productSet", pair)
    return failures


def _media_error(image: ExportedMedia) -> str:
    if image.errors:
        first = image.errors[0]
        return f"{first.code}: {first.message}"
    return "media processing failed"


def _manifest_entry(
    group: PlanRecord,
    product: ExportedProduct | None,
    status: GroupStatus,
    media: dict[str, ExportedMedia],
    attached: dict[str, str],
) -> ManifestRecord:
    keys = {m.id: key for key, m in media.items()}
    variant_ids = {v.sku: v.id for v in (product.variants if product else [])}
    return ManifestRecord(
        group_id=group.group_id,
        product_id=product.id if product else None,
        handle=group.handle,
        status=status,
        media=[
            ManifestMedia(
                id=media[m.s3_key].id if m.s3_key in media else None,
                s3_key=m.s3_key,
                etag=m.etag,
                status=_media_status(media[m.s3_key].status) if m.s3_key in media else None,
            )
            for m in group.media
        ],
        variants=[_manifest_variant(v, variant_ids, attached, keys) for v in group.variants],
    )


def _media_status(status: str) -> MediaStatus | None:
    """A media status the manifest knows (Shopify's MediaStatus), else None."""
    return MediaStatus(status) if status in MediaStatus.__members__ else None


def _manifest_variant(
    v: PlanVariant, variant_ids: dict[str, str], attached: dict[str, str], keys: dict[str, str]
) -> ManifestVariant:
    variant_id = variant_ids.get(v.sku)
    media_id = attached.get(variant_id) if variant_id else None
    return ManifestVariant(
        sku=v.sku,
        id=variant_id,
        media_id=media_id,
        s3_key=keys.get(media_id) if media_id else None,
    )


def _input_line(op: OperationRecord, line: int) -> Line | None:
    """The exact variables of an input line (0-based), with signed URLs redacted."""
    path = Path(op.input_file)
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        for number, raw in enumerate(handle):
            if number == line:
                return parse_line(op.document, redact_url(raw.decode("utf-8")))
    return None
