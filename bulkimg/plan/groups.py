"""Turn one catalog group and the S3 index into the plan of its product: media order, variants."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bulkimg.errors import ConfigError
from bulkimg.models import (
    CatalogGroup,
    GroupPlan,
    ImageSkuState,
    MissingImage,
    MissingReason,
    PlannedImage,
    PlannedVariant,
    Rejection,
    SkuImages,
)

_NOT_HANDLE = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class PlanRules:
    """The settings that shape a plan (checked once, before any work)."""

    handle_template: str = "{group_id}"
    alt_template: str = "{image_sku} - Image {variation}"

    def __post_init__(self) -> None:
        for name, template, sample in (
            ("handle_template", self.handle_template, {"group_id": "G-1"}),
            (
                "alt_template",
                self.alt_template,
                {"image_sku": "1", "variation": 1, "position": 1, "group_id": "G-1"},
            ),
        ):
            try:
                template.format(**sample)
            except (KeyError, IndexError, ValueError) as exc:
                raise ConfigError(f"invalid {name} {template!r}: {exc}") from None

    def handle(self, group_id: str) -> str:
        """Shopify handle: the template's text lower-cased, runs of other characters as '-'."""
        text = self.handle_template.format(group_id=group_id).lower()
        return _NOT_HANDLE.sub("-", text).strip("-")

    def alt(self, image_sku: str, variation: int, position: int, group_id: str) -> str:
        return self.alt_template.format(
            image_sku=image_sku, variation=variation, position=position, group_id=group_id
        )


def plan_group(group: CatalogGroup, index: Mapping[str, SkuImages], rules: PlanRules) -> GroupPlan:
    """Media: Image_SKUs in order of first appearance among the variants, each by variation."""
    media: list[PlannedImage] = []
    primary: dict[str, str] = {}
    for image_sku in _image_skus_in_order(group):
        images = index.get(image_sku)
        if images is None:
            continue
        for image in images.accepted:
            position = len(media) + 1
            alt = rules.alt(image_sku, image.variation, position, group.group_id)
            media.append(
                PlannedImage(
                    position,
                    image_sku,
                    image.variation,
                    image.key,
                    image.etag,
                    image.width,
                    image.height,
                    alt,
                    image.size,
                )
            )
        if images.accepted:
            primary[image_sku] = images.accepted[0].key
    variants: list[PlannedVariant] = []
    missing: list[MissingImage] = []
    for v in group.variants:
        key = primary.get(v.image_sku) if v.image_sku_state is ImageSkuState.OK else None
        variants.append(PlannedVariant(v.sku, v.image_sku, key))
        if key is None:
            missing.append(_missing(group.group_id, v.sku, v.image_sku, v.image_sku_state, index))
    plan = GroupPlan(
        group.group_id, rules.handle(group.group_id), group.title or group.group_id,
        media, variants, missing,
    )  # fmt: skip
    plan.deferred = _unreadable(group, index)
    return plan


def _image_skus_in_order(group: CatalogGroup) -> list[str]:
    ordered = (v.image_sku for v in group.variants if v.image_sku_state is ImageSkuState.OK)
    return list(dict.fromkeys(ordered))


def _missing(
    group_id: str,
    sku: str,
    image_sku: str,
    state: ImageSkuState,
    index: Mapping[str, SkuImages],
) -> MissingImage:
    if state is ImageSkuState.EMPTY:
        return MissingImage(group_id, sku, image_sku, "", MissingReason.NO_IMAGE_SKU)
    if state is ImageSkuState.INVALID:
        return MissingImage(group_id, sku, image_sku, "", MissingReason.INVALID_IMAGE_SKU)
    images = index[image_sku]
    reason = images.missing_reason or MissingReason.NO_OBJECTS
    return MissingImage(group_id, sku, image_sku, images.folder, reason, images.rejection_summary())


def _unreadable(group: CatalogGroup, index: Mapping[str, SkuImages]) -> str | None:
    """A reason to leave the group out of this run when S3 could not tell us its images.

    Writing a line without an image S3 failed to return would delete that image from the
    product (productSet replaces its file list), so such a group waits for the next run.
    """
    for image_sku in _image_skus_in_order(group):
        images = index.get(image_sku)
        for rejected in images.rejected if images else ():
            if rejected.reason is Rejection.UNREADABLE:
                return f"S3 could not read {rejected.key} ({rejected.detail})"
    return None
