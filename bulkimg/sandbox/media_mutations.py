"""The media mutations of an append-only client, with Shopify's rules:

- ``productUpdate(product: {id, ...}, media: [...])`` appends new media at the end of a product's
  media (nothing else changes) and updates only the product fields given;
- ``fileUpdate(files: [...])`` changes a MediaImage's alt text, file name or content, and which
  product it belongs to (a file removed from its product stays in the shop's Files library);
- ``productVariantDetachMedia`` removes variant-media links;
- ``productReorderMedia`` moves media, asynchronously: it returns a ``Job`` that is done once the
  moves are applied (``media_reorder_delay`` later); ``job(id:)`` answers whether it is done.

Each call is all-or-nothing: every input is checked against the current state inside one store
transaction before anything is written. Inputs arrive as GraphQL-coerced values. See
docs/sandbox.md for the Shopify page behind each rule and the *not documented* stricter choices.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Final, cast
from urllib.parse import urlsplit

from graphql import GraphQLError

from bulkimg.sandbox.gids import format_gid, parse_gid, split_gid
from bulkimg.sandbox.products import (
    Errors,
    UserErrorRecord,
    name_from_url,
    pair_variant,
    pairs_product,
    with_uuid,
)
from bulkimg.sandbox.store import Job, Media, Product, Store
from bulkimg.sandbox.views import (
    Args,
    Context,
    Info,
    View,
    media_view,
    product_view,
    variant_view,
)
from bulkimg.statuses import MediaStatus

log = logging.getLogger(__name__)

Input = Mapping[str, object]

MAX_MEDIA_PER_PRODUCT: Final = 250
MAX_ALT_LENGTH: Final = 512
JOB_PREFIX: Final = "gid://shopify/Job/"

# ProductUpdateInput fields the sandbox models; any other field given is refused, not ignored.
_PRODUCT_UPDATE_FIELDS: Final = frozenset(
    {"id", "title", "handle", "status", "vendor", "productType", "descriptionHtml", "tags"}
)
_HANDLE: Final = re.compile(r"[a-z0-9][a-z0-9-]*")


def _views(errors: Sequence[UserErrorRecord], *, with_code: bool = True) -> list[View]:
    out: list[View] = []
    for e in errors:
        view: View = {"field": list(e.field) if e.field else None, "message": e.message}
        if with_code:
            view["code"] = e.code
        out.append(view)
    return out


def _is_http(url: str) -> bool:
    return urlsplit(url).scheme in ("http", "https") and bool(urlsplit(url).netloc)


def _product(store: Store, gid: object) -> Product | None:
    if not isinstance(gid, str):
        return None
    number = parse_gid(gid, "Product")
    return store.product(number) if number is not None else None


# --- productUpdate ----------------------------------------------------------------------------


@dataclass(slots=True)
class _NewMedia:
    alt: str | None
    source: str
    filename: str


@dataclass(slots=True)
class UpdateOutcome:
    product_id: int | None
    errors: tuple[UserErrorRecord, ...] = ()
    media_to_process: tuple[int, ...] = ()


def product_update(
    store: Store, args: Args, now: float, media_limit: int = MAX_MEDIA_PER_PRODUCT
) -> UpdateOutcome:
    """productUpdate with ``product: {id, ...}`` and ``media`` (appended); all or nothing."""
    errors = Errors()
    if args.get("input") is not None:
        errors.not_emulated(("input",), "The deprecated `input` argument (use `product`)", None)
    if args.get("identifier") is not None:
        errors.not_emulated(("identifier",), "`identifier`", None)
    data = cast(Input, args.get("product") or {})
    for name, value in data.items():
        if name == "deleteConflictingConstrainedMetafields" and value is False:
            continue  # its default, filled in by GraphQL coercion
        if name not in _PRODUCT_UPDATE_FIELDS and value is not None:
            errors.not_emulated(("product", name), f"`{name}`", "INVALID_INPUT")
    given_media = [cast(Input, m) for m in cast(list[object], args.get("media") or [])]
    with store.transaction():
        target = _product(store, data.get("id"))
        if target is None:
            errors.add(("product", "id"), "Product does not exist", "PRODUCT_DOES_NOT_EXIST")
            return UpdateOutcome(None, tuple(errors.items))
        updated = _updated_product(store, target, data, now, errors)
        new_media = _planned_media(store, target, given_media, errors, media_limit)
        if errors:
            return UpdateOutcome(None, tuple(errors.items))
        store.update_product(updated)
        created = []
        for item in new_media:
            position = store.next_media_position(target.id)
            created.append(
                store.insert_media(target.id, position, item.alt, item.filename, item.source, now)
            )
    return UpdateOutcome(target.id, media_to_process=tuple(created))


def _updated_product(
    store: Store, target: Product, data: Input, now: float, errors: Errors
) -> Product:
    def pick(key: str, current: str) -> str:
        value = data.get(key)
        return value if isinstance(value, str) else current

    title = pick("title", target.title)
    if not title.strip():
        errors.add(("product", "title"), "Title can't be blank", "INVALID_INPUT")
    handle = pick("handle", target.handle)
    if handle != target.handle:
        if not _HANDLE.fullmatch(handle):
            errors.add(("product", "handle"), f"Handle '{handle}' is invalid.", "INVALID_INPUT")
        elif store.product_by_handle(handle) is not None:
            errors.add(
                ("product", "handle"),
                f"Handle '{handle}' already in use. Please provide a new handle.",
                "HANDLE_NOT_UNIQUE",
            )
    tags = data.get("tags")
    return Product(
        id=target.id,
        handle=handle,
        title=title,
        status=pick("status", target.status),
        vendor=pick("vendor", target.vendor),
        product_type=pick("productType", target.product_type),
        description_html=pick("descriptionHtml", target.description_html),
        tags=tuple(cast(list[str], tags)) if isinstance(tags, list) else target.tags,
        created_at=target.created_at,
        updated_at=now,
    )


def _planned_media(
    store: Store, target: Product, given: list[Input], errors: Errors, limit: int
) -> list[_NewMedia]:
    existing = len(store.media_of_product(target.id))
    if existing + len(given) > limit:
        errors.add(
            ("media",),
            f"Exceeded the limit of media per product ({limit}): the product has"
            f" {existing}, {len(given)} more given.",
            "PRODUCT_MEDIA_LIMIT_EXCEEDED",
        )
        return []
    planned: list[_NewMedia] = []
    names: set[str] = set()
    for i, media in enumerate(given):
        at = ("media", str(i))
        content_type = media.get("mediaContentType")
        if content_type != "IMAGE":
            errors.not_emulated((*at, "mediaContentType"), f"{content_type} media", "INVALID")
            continue
        source = cast(str, media["originalSource"])
        if not _is_http(source):
            errors.add((*at, "originalSource"), "originalSource must be an http(s) URL.", "INVALID")
            continue
        name = name_from_url(source)
        if not name:
            errors.add((*at, "originalSource"), "Cannot tell the file's name.", "INVALID")
            continue
        # APPEND_UUID (the default): a name already used in the shop gets a UUID appended.
        if name in names or store.filename_taken(name):
            name = with_uuid(name)
        names.add(name)
        alt = media.get("alt")
        planned.append(_NewMedia(alt if isinstance(alt, str) else None, source, name))
    return planned


def product_update_field(ctx: Context, args: Args, info: Info) -> object:
    limit = ctx.services.config.max_media_per_product
    outcome = product_update(ctx.store, args, time.time(), limit)
    ctx.services.media.enqueue(outcome.media_to_process)
    found = ctx.store.product(outcome.product_id) if outcome.product_id is not None else None
    return {
        "product": product_view(found) if found else None,
        # ProductUpdatePayload.userErrors is [UserError!]!: field and message, no code.
        "userErrors": _views(outcome.errors, with_code=False),
    }


# --- fileUpdate -------------------------------------------------------------------------------


@dataclass(slots=True)
class _FileChange:
    media: Media
    alt: str | None = None
    filename: str | None = None
    source: str | None = None
    remove: bool = False
    add_to: int | None = None


@dataclass(slots=True)
class FileOutcome:
    media_ids: tuple[int, ...] | None
    errors: tuple[UserErrorRecord, ...] = ()
    media_to_process: tuple[int, ...] = ()


@dataclass(slots=True)
class _FilePlanner:
    store: Store
    media_limit: int = 0
    errors: Errors = field(default_factory=Errors)
    seen: set[int] = field(default_factory=set)
    new_names: set[str] = field(default_factory=set)
    added: dict[int, int] = field(default_factory=dict)
    """Media this call adds to each product (the per-product limit)."""

    def plan(self, i: int, file: Input) -> _FileChange | None:
        at = ("files", str(i))
        type_name, number = split_gid(cast(str, file["id"]))
        if type_name != "MediaImage":
            self.errors.not_emulated(
                (*at, "id"), f"Updating a {type_name} (only MediaImage files)", "INVALID"
            )
            return None
        media = self.store.media(number)
        if media is None:
            self.errors.add((*at, "id"), "File does not exist.", "FILE_DOES_NOT_EXIST")
            return None
        if media.id in self.seen:
            self.errors.add((*at, "id"), "File specified more than once.", "INVALID")
            return None
        self.seen.add(media.id)
        if file.get("previewImageSource") is not None:
            self.errors.not_emulated((*at, "previewImageSource"), "`previewImageSource`", "INVALID")
            return None
        wanted = ("alt", "filename", "originalSource", "referencesToAdd", "referencesToRemove")
        if all(file.get(name) is None for name in wanted):
            self.errors.add(at, "At least one argument is required.", "MISSING_ARGUMENTS")
            return None
        if media.status is MediaStatus.FAILED:
            self.errors.add(
                (*at, "id"),
                "File cannot be updated in a failed state.",
                "INVALID_FAILED_MEDIA_STATE",
            )
            return None
        if media.status is not MediaStatus.READY:
            self.errors.add((*at, "id"), "The file is not in the READY state.", "NON_READY_STATE")
            return None
        change = _FileChange(media)
        ok = self.alt(file, at, change)
        ok = self.filename(file, at, change) and ok
        ok = self.source(file, at, change) and ok
        ok = self.references(file, at, change) and ok
        return change if ok else None

    def alt(self, file: Input, at: tuple[str, ...], change: _FileChange) -> bool:
        alt = file.get("alt")
        if not isinstance(alt, str):
            return True
        if len(alt) > MAX_ALT_LENGTH:
            self.errors.add(
                (*at, "alt"),
                f"The alt value exceeds the maximum limit of {MAX_ALT_LENGTH} characters.",
                "ALT_VALUE_LIMIT_EXCEEDED",
            )
            return False
        change.alt = alt
        return True

    def filename(self, file: Input, at: tuple[str, ...], change: _FileChange) -> bool:
        name = file.get("filename")
        if not isinstance(name, str):
            return True
        current = change.media.filename
        path = PurePosixPath(name)
        if not name.strip() or "/" in name or "\\" in name or not path.stem or name != path.name:
            self.errors.add(
                (*at, "filename"), "The provided filename is invalid.", "INVALID_FILENAME"
            )
            return False
        if path.suffix != PurePosixPath(current).suffix:
            self.errors.add(
                (*at, "filename"),
                f"The extension must match the original ({PurePosixPath(current).suffix!r}).",
                "INVALID_FILENAME_EXTENSION",
            )
            return False
        if name != current and (name in self.new_names or self.store.filename_taken(name)):
            self.errors.add(
                (*at, "filename"),
                "The provided filename already exists.",
                "FILENAME_ALREADY_EXISTS",
            )
            return False
        self.new_names.add(name)
        change.filename = name if name != current else None
        return True

    def source(self, file: Input, at: tuple[str, ...], change: _FileChange) -> bool:
        source = file.get("originalSource")
        if not isinstance(source, str):
            return True
        if not _is_http(source):
            self.errors.add(
                (*at, "originalSource"),
                "Invalid image source url value provided.",
                "INVALID_IMAGE_SOURCE_URL",
            )
            return False
        name = change.filename or change.media.filename
        given = PurePosixPath(name_from_url(source)).suffix.lower()
        if given != PurePosixPath(name).suffix.lower():
            self.errors.add(
                (*at, "originalSource"),
                f"The source's extension ({given or 'none'}) does not match the file's ({name}).",
                "MISMATCHED_FILENAME_AND_ORIGINAL_SOURCE",
            )
            return False
        change.source = source
        return True

    def references(self, file: Input, at: tuple[str, ...], change: _FileChange) -> bool:
        media = change.media
        owner: int | None = None if self.store.media_detached(media.id) else media.product_id
        ok = True
        for j, gid in enumerate(cast(list[str], file.get("referencesToRemove") or [])):
            here = (*at, "referencesToRemove", str(j))
            product = _product(self.store, gid)
            if product is None:
                self.errors.add(
                    here, "The target resource does not exist.", "REFERENCE_TARGET_DOES_NOT_EXIST"
                )
                ok = False
            elif product.id != owner:
                self.errors.add(here, f"The file is not referenced by {gid}.", "INVALID")
                ok = False
            else:
                owner, change.remove = None, True
        for j, gid in enumerate(cast(list[str], file.get("referencesToAdd") or [])):
            here = (*at, "referencesToAdd", str(j))
            product = _product(self.store, gid)
            if product is None:
                self.errors.add(
                    here, "The target resource does not exist.", "REFERENCE_TARGET_DOES_NOT_EXIST"
                )
                ok = False
            elif owner == product.id:
                continue  # already one of its media: unchanged
            elif owner is not None:
                self.errors.not_emulated(
                    here, "A file referenced by more than one product", "INVALID"
                )
                ok = False
            elif self.full(product.id):
                self.errors.add(
                    here, "Exceeded the limit of media per product.", "PRODUCT_MEDIA_LIMIT_EXCEEDED"
                )
                ok = False
            else:
                owner, change.add_to = product.id, product.id
                self.added[product.id] = self.added.get(product.id, 0) + 1
        return ok

    def full(self, product_id: int) -> bool:
        count = len(self.store.media_of_product(product_id)) + self.added.get(product_id, 0)
        return count >= self.media_limit


def file_update(
    store: Store, files: Sequence[Input], now: float, media_limit: int = MAX_MEDIA_PER_PRODUCT
) -> FileOutcome:
    """fileUpdate for MediaImage files; all or nothing."""
    planner = _FilePlanner(store, media_limit)
    with store.transaction():
        changes = [planner.plan(i, file) for i, file in enumerate(files)]
        if planner.errors:
            return FileOutcome(None, tuple(planner.errors.items))
        to_process = []
        for change in changes:
            assert change is not None
            media_id = change.media.id
            store.update_media_file(media_id, now, alt=change.alt, filename=change.filename)
            if change.source is not None:
                store.replace_media_source(media_id, change.source, now)
                to_process.append(media_id)
            if change.remove:
                store.detach_media(media_id, now)
            if change.add_to is not None:
                store.attach_media(media_id, change.add_to, now)
    ids = tuple(c.media.id for c in changes if c is not None)
    return FileOutcome(ids, media_to_process=tuple(to_process))


def file_update_field(ctx: Context, args: Args, info: Info) -> object:
    limit = ctx.services.config.max_media_per_product
    outcome = file_update(ctx.store, cast(list[Input], args["files"]), time.time(), limit)
    ctx.services.media.enqueue(outcome.media_to_process)
    if outcome.media_ids is None:
        return {"files": None, "userErrors": _views(outcome.errors)}
    found = [ctx.store.media(media_id) for media_id in outcome.media_ids]
    return {"files": [media_view(m) for m in found if m is not None], "userErrors": []}


# --- fileDelete -------------------------------------------------------------------------------


@dataclass(slots=True)
class DeleteOutcome:
    deleted: tuple[int, ...] | None
    errors: tuple[UserErrorRecord, ...] = ()


def file_delete(store: Store, file_ids: Sequence[str]) -> DeleteOutcome:
    """Delete MediaImage files from the shop: from the Files library and from every product and
    variant that shows them (all or nothing). A file still being processed is refused."""
    errors = Errors()
    with store.transaction():
        found: list[int] = []
        for i, gid in enumerate(file_ids):
            at = ("fileIds", str(i))
            type_name, number = split_gid(gid)
            media = store.media(number) if type_name == "MediaImage" else None
            if type_name != "MediaImage":
                errors.not_emulated(
                    at, f"Deleting a {type_name} (only MediaImage files)", "INVALID"
                )
            elif media is None:
                errors.add(at, "File does not exist.", "FILE_DOES_NOT_EXIST")
            elif media.status in (MediaStatus.UPLOADED, MediaStatus.PROCESSING):
                errors.add(at, "The file is being processed.", "NON_READY_STATE")
            elif number in found:
                errors.add(at, "File specified more than once.", "INVALID")
            else:
                found.append(number)
        if errors:
            return DeleteOutcome(None, tuple(errors.items))
        for number in found:
            store.delete_media(number)
    return DeleteOutcome(tuple(found))


def file_delete_field(ctx: Context, args: Args, info: Info) -> object:
    outcome = file_delete(ctx.store, cast(list[str], args["fileIds"]))
    if outcome.deleted is None:
        return {"deletedFileIds": None, "userErrors": _views(outcome.errors)}
    ids = [format_gid("MediaImage", number) for number in outcome.deleted]
    return {"deletedFileIds": ids, "userErrors": []}


# --- productVariantDetachMedia ----------------------------------------------------------------


@dataclass(slots=True)
class DetachOutcome:
    product_id: int | None
    errors: tuple[UserErrorRecord, ...] = ()
    variant_ids: tuple[int, ...] = ()


def variant_detach_media(store: Store, product_gid: str, pairs: Sequence[Input]) -> DetachOutcome:
    """Remove each listed variant-media link (all or nothing)."""
    errors = Errors()
    with store.transaction():
        product = pairs_product(store, product_gid, pairs, errors)
        if product is None:
            return DetachOutcome(None, tuple(errors.items))
        variants = {v.id for v in store.variants(product.id)}
        media = {m.id for m in store.media_of_product(product.id)}
        seen: set[int] = set()
        detached: list[int] = []
        for i, pair in enumerate(pairs):
            at = ("variantMedia", str(i))
            variant_id = pair_variant(pair, at, variants, seen, errors)
            media_ids = cast(list[str], pair["mediaIds"])
            if variant_id is None:
                continue
            detached.append(variant_id)
            if not media_ids:
                errors.add((*at, "mediaIds"), "Missing arguments.", "MISSING_ARGUMENTS")
            attached = store.variant_media(variant_id)
            for media_gid in media_ids:
                media_id = parse_gid(media_gid, "MediaImage")
                if media_id is None or media_id not in media:
                    errors.add(
                        (*at, "mediaIds"),
                        "Media does not exist on the given product.",
                        "MEDIA_DOES_NOT_EXIST_ON_PRODUCT",
                    )
                elif media_id != attached:
                    errors.add(
                        (*at, "mediaIds"),
                        "The specified media is not attached to the specified variant.",
                        "MEDIA_IS_NOT_ATTACHED_TO_VARIANT",
                    )
        if errors:
            return DetachOutcome(None, tuple(errors.items))
        for variant_id in detached:
            store.unlink_variant_media(variant_id)
    return DetachOutcome(product.id, variant_ids=tuple(detached))


def product_variant_detach_media(ctx: Context, args: Args, info: Info) -> object:
    outcome = variant_detach_media(
        ctx.store, cast(str, args["productId"]), cast(list[Input], args["variantMedia"])
    )
    if outcome.product_id is None:
        return {"product": None, "productVariants": None, "userErrors": _views(outcome.errors)}
    found = ctx.store.product(outcome.product_id)
    variants = [ctx.store.variant(v) for v in outcome.variant_ids]
    return {
        "product": product_view(found) if found else None,
        "productVariants": [variant_view(v) for v in variants if v is not None],
        "userErrors": [],
    }


# --- productReorderMedia and job(id:) ---------------------------------------------------------


@dataclass(slots=True)
class ReorderOutcome:
    job_id: str | None
    errors: tuple[UserErrorRecord, ...] = ()


def reorder_media(
    store: Store, product_gid: str, moves: Sequence[Input], due_at: float
) -> ReorderOutcome:
    """Check the moves now and record a job that applies them at ``due_at``."""
    errors = Errors()
    with store.transaction():
        product = _product(store, product_gid)
        if product is None:
            errors.add(("id",), "Product does not exist.", "PRODUCT_DOES_NOT_EXIST")
            return ReorderOutcome(None, tuple(errors.items))
        if not moves:
            errors.add(("moves",), "At least one move is required.", "MISSING_ARGUMENTS")
        media = {m.id for m in store.media_of_product(product.id)}
        planned: list[tuple[int, int]] = []
        for j, move in enumerate(moves):
            at = ("moves", str(j))
            media_id = parse_gid(cast(str, move["id"]), "MediaImage")
            position = _position(move.get("newPosition"))
            if media_id is None or media_id not in media:
                errors.add(
                    (*at, "id"),
                    "Media does not exist on the given product.",
                    "MEDIA_DOES_NOT_EXIST_ON_PRODUCT",
                )
            elif position is None:
                errors.add((*at, "newPosition"), "The input value is invalid.", "INVALID")
            else:
                planned.append((media_id, position))
        if errors:
            return ReorderOutcome(None, tuple(errors.items))
        job_id = f"{JOB_PREFIX}{uuid.uuid4()}"
        store.create_job(job_id, product.id, planned, due_at)
    return ReorderOutcome(job_id)


def _position(value: object) -> int | None:
    """An UnsignedInt64 (an integer or a string of digits)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def apply_job(store: Store, job: Job, now: float) -> None:
    """Moves evaluated in order; a position past the end moves the media to the end. Media no
    longer on the product are skipped."""
    order = [m.id for m in store.media_of_product(job.product_id)]
    for media_id, position in job.moves:
        if media_id not in order:
            continue
        order.remove(media_id)
        order.insert(min(position, len(order)), media_id)
    store.set_media_order(order, now)
    store.finish_job(job.id)


def apply_due_jobs(store: Store) -> None:
    now = time.time()
    with store.transaction():
        for job in store.due_jobs(now):
            apply_job(store, job, now)


def _apply_later(store: Store, job_id: str) -> None:
    """The timer's end: apply this job (the timer may wake a hair before ``due_at``)."""
    try:
        with store.transaction():
            job = store.job(job_id)
            if job is not None and not job.done:
                apply_job(store, job, time.time())
    except Exception:  # the shop may have closed meanwhile; job(id:) applies due jobs too
        log.debug("sandbox: applying reorder jobs failed", exc_info=True)


def product_reorder_media(ctx: Context, args: Args, info: Info) -> object:
    delay = ctx.services.config.media_reorder_delay
    outcome = reorder_media(
        ctx.store,
        cast(str, args["id"]),
        cast(list[Input], args["moves"]),
        time.time() + delay,
    )
    if outcome.job_id is None:
        return {
            "job": None,
            "mediaUserErrors": _views(outcome.errors),
            "userErrors": _views(outcome.errors, with_code=False),
        }
    if delay <= 0:
        apply_due_jobs(ctx.store)
    else:
        timer = threading.Timer(delay, _apply_later, args=(ctx.store, outcome.job_id))
        timer.daemon = True
        timer.start()
    job = ctx.store.job(outcome.job_id)
    return {"job": job_view(job) if job else None, "mediaUserErrors": [], "userErrors": []}


def job_view(job: Job) -> View:
    return {"__type": "Job", "__ref": job, "id": job.id, "done": job.done}


def job_query(ctx: Context, args: Args, info: Info) -> object:
    job_id = cast(str, args["id"])
    if not job_id.startswith(JOB_PREFIX):
        raise GraphQLError(
            f"Invalid global id '{job_id}'",
            extensions={"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"},
        )
    apply_due_jobs(ctx.store)
    job = ctx.store.job(job_id)
    return job_view(job) if job else None


__all__ = [
    "apply_due_jobs",
    "file_update",
    "file_update_field",
    "job_query",
    "product_reorder_media",
    "product_update",
    "product_update_field",
    "product_variant_detach_media",
    "reorder_media",
    "variant_detach_media",
]
