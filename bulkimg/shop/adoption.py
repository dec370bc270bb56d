"""What happens to each image of a product that already exists: kept, adopted, replaced, uploaded,
removed, or left alone because it is not bulkimg's.

An image on the product is **bulkimg's** when its file name says which S3 object it is: either
the name bulkimg gives (`<stem>--<etag8>.<ext>`, plan/names.py) or the S3 file name itself
(`<Image_SKU>-<N>a-<digits>.<ext>`, what the old workflow's `originalSource` uploads were named
by), either with Shopify's `_<uuid>` suffix. Such an image is *kept* when it is the current
version of a wanted S3 object (bulkimg's own name: same ETag; the old workflow's name: READY with
the S3 image's width and height — it is then *adopted*), *replaced* when it is an out-of-date or
failed copy, and *removed* when it is a second copy of a kept one or (bulkimg's own name only) an
S3 object no longer wanted. Every other image is *foreign* and is always kept, where it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath

from bulkimg.formats.plan import PlanMedia
from bulkimg.plan.names import filename_of_url, parse_shopify_filename
from bulkimg.shopify.results import ExportedMedia

_UUID_SUFFIX = re.compile(
    r"_[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


class Fate(StrEnum):
    KEPT = "kept"  # bulkimg's, current
    ADOPTED = "adopted"  # the old workflow's upload of the same S3 object, current
    REPLACED = "replaced"  # bulkimg's out-of-date or failed copy: a new upload takes its place
    REMOVED = "removed"  # bulkimg's, not wanted: a duplicate, or an S3 object no longer wanted
    FOREIGN = "foreign"  # not bulkimg's: kept where it is


@dataclass(frozen=True, slots=True)
class FileSlot:
    """One entry of the product's new file list: an existing media by id, or a new upload."""

    media_id: str | None = None
    s3_key: str | None = None  # a new upload of this planned image


@dataclass(slots=True)
class ImageDecision:
    """The product's file list after this run, and what happened to each image."""

    files: list[FileSlot] = field(default_factory=list)
    fates: dict[str, Fate] = field(default_factory=dict)  # media id -> fate
    media_of: dict[str, str] = field(default_factory=dict)  # S3 key -> media id kept or adopted
    copy_of: dict[str, str] = field(default_factory=dict)  # media id -> S3 key it is a copy of
    uploads: list[str] = field(default_factory=list)  # S3 keys uploaded (new or replacing)

    def count(self, fate: Fate) -> int:
        return sum(1 for f in self.fates.values() if f is fate)

    @property
    def changed(self) -> bool:
        """Anything to send: an upload or a removal (an order difference alone is not sent)."""
        return bool(self.uploads) or any(
            f in (Fate.REMOVED, Fate.REPLACED) for f in self.fates.values()
        )

    def removed_ids(self) -> list[str]:
        return [m for m, f in self.fates.items() if f in (Fate.REMOVED, Fate.REPLACED)]


def s3_filename(s3_key: str) -> str:
    return s3_key.rpartition("/")[2]


def base_name(filename: str) -> str:
    """A file name without Shopify's `_<uuid>` clash suffix."""
    path = PurePosixPath(filename)
    return f"{_UUID_SUFFIX.sub('', path.stem)}{path.suffix}"


def _claim(
    media: ExportedMedia, wanted: dict[str, PlanMedia], by_alt: dict[str, PlanMedia]
) -> tuple[PlanMedia | None, bool, bool]:
    """(the planned image this media is a copy of, whether it is current, whether bulkimg's);
    (None, False, bulkimg's) when it is not a copy of a wanted image."""
    name = filename_of_url(media.url)
    if not name:
        # Not READY: Shopify shows no file name. With the alt text bulkimg gives, a failed one is
        # replaced (it shows nothing anyway) and one still processing is kept (not sent twice).
        plan = by_alt.get(media.alt)
        return plan, plan is not None and media.status != "FAILED", plan is not None
    own = parse_shopify_filename(name)
    if own is not None:
        plan = wanted.get(own.s3_filename)
        current = plan is not None and plan.etag.startswith(own.etag) and media.status != "FAILED"
        return plan, current, True
    plan = wanted.get(base_name(name))
    if plan is None:
        return None, False, False
    current = (
        media.status == "READY"
        and (media.width, media.height) == (plan.width, plan.height)
        and (None in (media.file_size, plan.size) or media.file_size == plan.size)
    )
    return plan, current, False


def decide(planned: list[PlanMedia], shop_media: list[ExportedMedia]) -> ImageDecision:
    """The file list of an existing product: bulkimg's images in plan order (kept or adopted by
    id, the rest uploaded), then every foreign image by id.

    A bulk export does not give the order of a product's media (its lines are ungrouped), so the
    list cannot put foreign images back where they were: they follow bulkimg's, in export order.
    """
    wanted = {s3_filename(m.s3_key): m for m in planned}
    by_alt = {m.alt: m for m in planned}
    decision = ImageDecision()
    foreign: list[str] = []
    stale: dict[str, str] = {}  # media id -> S3 key of an out-of-date or failed copy
    for media in shop_media:
        plan, current, own = _claim(media, wanted, by_alt)
        if plan is not None:
            decision.copy_of[media.id] = plan.s3_key
        if plan is None:
            decision.fates[media.id] = Fate.REMOVED if own else Fate.FOREIGN
            if not own:
                foreign.append(media.id)
        elif current and plan.s3_key not in decision.media_of:
            decision.fates[media.id] = Fate.KEPT if own else Fate.ADOPTED
            decision.media_of[plan.s3_key] = media.id
        elif not current and plan.s3_key not in stale.values():
            decision.fates[media.id] = Fate.REPLACED
            stale[media.id] = plan.s3_key
        else:
            decision.fates[media.id] = Fate.REMOVED  # a second copy
    for media_id, key in stale.items():
        if key in decision.media_of:  # a current copy exists too: nothing replaces this one
            decision.fates[media_id] = Fate.REMOVED
    for plan in planned:
        kept = decision.media_of.get(plan.s3_key)
        if kept is None:
            decision.uploads.append(plan.s3_key)
        decision.files.append(FileSlot(media_id=kept, s3_key=None if kept else plan.s3_key))
    decision.files.extend(FileSlot(media_id=media_id) for media_id in foreign)
    return decision
