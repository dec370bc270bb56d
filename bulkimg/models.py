"""Typed records that cross stage boundaries: catalog -> S3 index -> plan."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class ImageSkuState(StrEnum):
    """What the catalog row's Image_SKU allows."""

    OK = "ok"
    EMPTY = "empty"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Variant:
    """One catalog row: a product variant and the image set it shows."""

    sku: str
    group_id: str
    image_sku: str  # trimmed; "" when empty; as given (escaped in logs) when invalid
    image_sku_state: ImageSkuState
    title: str | None = None


@dataclass(slots=True)
class CatalogGroup:
    """One Shopify product: its variants in catalog order."""

    group_id: str
    variants: list[Variant] = field(default_factory=list)

    @property
    def title(self) -> str | None:
        return next((v.title for v in self.variants if v.title), None)


class RowProblemKind(StrEnum):
    NO_GROUP = "no product group id"
    NO_SKU = "no variant SKU"
    DUPLICATE_SKU = "duplicate variant SKU (first row kept)"
    UNKNOWN_GROUP = "group id not found in catalog"
    NOT_UTF8 = "value is not valid UTF-8 text"
    UNPARSEABLE = "record could not be parsed"


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A catalog row (or requested group) that could not become a variant."""

    kind: RowProblemKind
    group_id: str
    sku: str
    image_sku: str
    row: int  # 1-based position in the catalog stream, 0 when not a row
    detail: str = ""  # which column, or what the parser said


@dataclass(frozen=True, slots=True)
class S3Object:
    """One listed S3 object."""

    key: str
    size: int
    etag: str
    last_modified: datetime

    @property
    def filename(self) -> str:
        return self.key.rsplit("/", 1)[-1]


class Rejection(StrEnum):
    """Why a file in an Image_SKU's folder is not used."""

    # decided from the name alone
    PATTERN = "name does not match [Image_SKU]-[N]a-[digits].[ext]"
    SUFFIX = "variation suffix is not 'a'"
    EXTENSION = "not an accepted image type (.jpg .jpeg .png .gif .webp)"
    SUPERSEDED = "superseded by a newer file with the same variation"
    # decided from the listing's size or the image header
    EMPTY = "empty file"
    FILE_TOO_LARGE = "file larger than the upload limit"
    TOO_SMALL = "smaller than the minimum size"
    TOO_MANY_PIXELS = "more pixels than the upload limit"
    FORMAT_MISMATCH = "bytes are not the format the extension claims"
    CORRUPT = "not a valid image header"
    MARKER_TOO_FAR = "size marker not found within the probe limit"
    UNREADABLE = "could not be read from S3"
    CHANGED = "changed or deleted while being read"

    @property
    def by_name(self) -> bool:
        return self in _NAME_REJECTIONS


_NAME_REJECTIONS = frozenset({Rejection.PATTERN, Rejection.SUFFIX, Rejection.EXTENSION})


@dataclass(frozen=True, slots=True)
class ImageProbe:
    """What the image header said (or why it could not be used); cached by (bucket, key, ETag)."""

    format: str | None
    width: int
    height: int
    rejection: Rejection | None  # None: the header is a usable image
    detail: str = ""
    bytes_read: int = 0


@dataclass(frozen=True, slots=True)
class AcceptedImage:
    """A valid image of an Image_SKU, ready to be uploaded."""

    image_sku: str
    variation: int
    key: str
    etag: str
    size: int
    width: int
    height: int
    format: str


@dataclass(frozen=True, slots=True)
class RejectedFile:
    """A file in an Image_SKU's folder that is not used, and why."""

    key: str
    reason: Rejection
    detail: str = ""


class MissingReason(StrEnum):
    """Why a variant ends with no usable image (the missing-images log's Error field)."""

    NO_IMAGE_SKU = "No Image_SKU in catalog"
    INVALID_IMAGE_SKU = "Invalid Image_SKU (only A-Z a-z 0-9 _ - allowed)"
    NO_OBJECTS = "No images found in S3"
    NO_MATCH = "No images matching pattern [Image_SKU]-*a-*"
    ALL_INVALID = "All images too small or invalid"


@dataclass(slots=True)
class SkuImages:
    """The S3 index's answer for one Image_SKU."""

    image_sku: str
    folder: str
    accepted: list[AcceptedImage] = field(default_factory=list)
    rejected: list[RejectedFile] = field(default_factory=list)

    @property
    def missing_reason(self) -> MissingReason | None:
        if self.accepted:
            return None
        if not self.rejected:
            return MissingReason.NO_OBJECTS
        if all(r.reason.by_name for r in self.rejected):
            return MissingReason.NO_MATCH
        return MissingReason.ALL_INVALID

    def rejection_summary(self) -> str:
        counts: dict[str, int] = {}
        for r in self.rejected:
            counts[r.reason.value] = counts.get(r.reason.value, 0) + 1
        return "; ".join(f"{n} {reason}" for reason, n in sorted(counts.items()))


@dataclass(frozen=True, slots=True)
class MissingImage:
    """One line of the missing-images log."""

    group_id: str
    sku: str
    image_sku: str
    s3_path: str
    reason: MissingReason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class PlannedImage:
    """One media entry of a product, in upload order."""

    position: int  # 1-based; 1 is the featured image
    image_sku: str
    variation: int
    s3_key: str
    etag: str
    width: int
    height: int
    alt: str
    size: int | None = None  # bytes of the S3 object

    @property
    def filename(self) -> str:
        return self.s3_key.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class PlannedVariant:
    sku: str
    image_sku: str
    image_s3_key: str | None  # the Image_SKU's primary image, or None when it has none


@dataclass(slots=True)
class GroupPlan:
    """What one productSet line will do to one product."""

    group_id: str
    handle: str
    title: str
    media: list[PlannedImage]
    variants: list[PlannedVariant]
    missing: list[MissingImage]
    deferred: str | None = None  # why the group is left out of this run, if it is
    unchanged: bool = False  # the shop already matches: no line this run
