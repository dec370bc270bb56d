"""Turn the build's lines into what a submit sends to the shop as it is now.

The build writes each group's line in its *create* form (handle, title, options, variants, every
image by URL): it does not know the shop. Right before phase 1, submit exports the shop's
products once (a read-only bulk query) and rewrites every line from it:

- a group whose product exists (shopindex.py: by handle, else by SKU) gets a line that names the
  product **by id** and carries **only `files`**: the product's current media by id (foreign ones
  untouched, in their places), bulkimg's current or adopted images by id, and uploads only for
  images that are missing, out of date or failed (adoption.py). Title, options, variants and
  every other product field are never sent. A product whose images already match gets no line.
- a new group is created from the catalog (its create form, with the status from settings), or
  skipped and reported with `--no-create`;
- a group in conflict (handle and SKUs disagree) gets no line and is reported.

Every rewritten line of an existing product is checked before it is written: no field but
`files`, and every media id the product holds that bulkimg does not remove is listed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import orjson
from pydantic import BaseModel

from bulkimg.adoption import Fate, FileSlot, ImageDecision, decide
from bulkimg.errors import InputFileError
from bulkimg.planfile import PlanRecord, read_plan
from bulkimg.results import ExportedProduct, read_export
from bulkimg.shopindex import Identity, Match, ShopIndex
from bulkimg.shopname import shopify_filename

Action = Literal["create", "update", "unchanged", "conflict", "not_created", "held"]


class ResolvedGroup(BaseModel):
    """One group of a run as resolved against the shop (a line of resolution-<run>.jsonl)."""

    group_id: str
    handle: str
    action: Action
    match: str
    product_id: str | None = None
    file: str | None = None  # the resolved productSet file and 1-based line (None: no line)
    line: int | None = None
    detail: str = ""
    media_of: dict[str, str] = {}  # S3 key -> media id already on the product (kept/adopted)
    # Variant id -> S3 key: a variant showing a copy this line replaces or removes shows that
    # image's new (or kept) copy again after phase 2, not its primary image.
    relink: dict[str, str] = {}
    uploads: list[str] = []  # S3 keys the line uploads (new, or replacing a copy)
    adopted: int = 0
    uploaded: int = 0
    replaced: int = 0
    removed: int = 0
    kept_foreign: int = 0
    variant_images_set: int = 0  # variants that show no image and get their primary image
    variant_images_kept: int = 0  # variants showing an image bulkimg does not replace

    def dump(self) -> bytes:
        return orjson.dumps(self.model_dump()) + b"\n"


@dataclass(frozen=True, slots=True)
class ResolveRules:
    """What submit may do on the shop beyond images."""

    create: bool = True  # create products that do not exist (else skip and report them)
    create_status: str = "DRAFT"  # the status of a product bulkimg creates


def read_resolution(path: Path) -> Iterator[ResolvedGroup]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                try:
                    yield ResolvedGroup.model_validate_json(raw)
                except ValueError as exc:
                    raise InputFileError(f"{path}:{number}: not a resolved group ({exc})") from None


def _private(path: Path) -> BinaryIO:
    """A new file only its owner can read: the lines hold presigned URLs."""
    path.unlink(missing_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def resolve_run(
    plan_path: Path,
    build_files: list[Path],
    export_path: Path | None,
    out_dir: Path,
    run_id: str,
    rules: ResolveRules,
) -> tuple[list[Path], Path]:
    """Write the run's resolved productSet files (empty ones left out) and its resolution file."""
    index = ShopIndex(read_export(export_path).values() if export_path else [])
    plans = {(r.file, r.line): r for r in read_plan(plan_path) if r.file and r.line}
    resolution = out_dir / f"resolution-{run_id}.jsonl"
    written: list[Path] = []
    with resolution.open("wb") as record_out:
        for build_file in build_files:
            target = out_dir / f"productset-resolved-{run_id}-{build_file.name}"
            lines = 0
            with build_file.open("rb") as source, _private(target) as sink:
                for number, raw in enumerate(source, start=1):
                    plan = plans.get((build_file.name, number))
                    if plan is None or not raw.strip():
                        continue
                    group, line = resolve_line(plan, orjson.loads(raw), index, rules)
                    if line is not None:
                        lines += 1
                        sink.write(orjson.dumps(line) + b"\n")
                        group.file, group.line = target.name, lines
                    record_out.write(group.dump())
            if lines:
                written.append(target)
            else:
                target.unlink()
    return written, resolution


def resolve_line(
    plan: PlanRecord, variables: dict[str, object], index: ShopIndex, rules: ResolveRules
) -> tuple[ResolvedGroup, dict[str, object] | None]:
    """A group's resolution and the line to send for it (None: nothing to send)."""
    identity = index.resolve(plan.handle, [v.sku for v in plan.variants])
    base = ResolvedGroup(
        group_id=plan.group_id, handle=plan.handle, action="create", match=identity.match.value
    )
    if identity.match is Match.CONFLICT:
        return base.model_copy(update={"action": "conflict", "detail": identity.detail}), None
    if identity.match is Match.NEW:
        if not rules.create:
            detail = "no product with this handle or these SKUs (--no-create)"
            return base.model_copy(update={"action": "not_created", "detail": detail}), None
        line = _create_line(variables, rules)
        to_set = sum(1 for v in plan.variants if v.image_s3_key)
        uploads = [m.s3_key for m in plan.media]
        update = {"uploads": uploads, "uploaded": len(uploads), "variant_images_set": to_set}
        return base.model_copy(update=update), line
    return _update(plan, variables, identity, base)


def _create_line(variables: dict[str, object], rules: ResolveRules) -> dict[str, object]:
    """The build's create form, without an identifier (a handle taken meanwhile fails the line
    with HANDLE_NOT_UNIQUE instead of updating that product), with the configured status."""
    source = variables.get("input")
    product = dict(source) if isinstance(source, dict) else {}
    product["status"] = rules.create_status
    return {"input": product}


def _update(
    plan: PlanRecord, variables: dict[str, object], identity: Identity, base: ResolvedGroup
) -> tuple[ResolvedGroup, dict[str, object] | None]:
    product = identity.product
    assert product is not None
    decision = decide(plan.media, product.media)
    sending = decision.changed and bool(plan.media)
    group = base.model_copy(
        update={
            "action": "update" if sending else "unchanged",
            "product_id": product.id,
            "media_of": decision.media_of,
            "adopted": decision.count(Fate.ADOPTED),
            "uploads": decision.uploads if sending else [],
            "uploaded": len(decision.uploads) if sending else 0,
            "replaced": decision.count(Fate.REPLACED) if sending else 0,
            "removed": decision.count(Fate.REMOVED) if sending else 0,
            "kept_foreign": decision.count(Fate.FOREIGN),
            "relink": _relinks(product, decision) if sending else {},
            **_variant_images(plan, product, decision),
        }
    )
    if not sending:
        return group, None
    uploads = _upload_entries(plan, variables)
    files = [_file_entry(slot, uploads) for slot in decision.files]
    line: dict[str, object] = {"identifier": {"id": product.id}, "input": {"files": files}}
    check_images_only(line, product, decision)
    return group, line


def _relinks(product: ExportedProduct, decision: ImageDecision) -> dict[str, str]:
    """Variants whose image is a copy the line drops: the S3 key they show again."""
    dropped = set(decision.removed_ids())
    return {
        v.id: decision.copy_of[v.media_ids[0]]
        for v in product.variants
        if v.media_ids and v.media_ids[0] in dropped and v.media_ids[0] in decision.copy_of
    }


def _variant_images(
    plan: PlanRecord, product: ExportedProduct, decision: ImageDecision
) -> dict[str, int]:
    """How many variants get their primary image, and how many keep the image they show."""
    on_shop = {v.sku: v for v in product.variants}
    dropped = set(decision.removed_ids())
    to_set = kept = 0
    for variant in plan.variants:
        found = on_shop.get(variant.sku)
        if found is None or not variant.image_s3_key:
            continue
        shown = found.media_ids[0] if found.media_ids else None
        if shown is None or shown in dropped:
            to_set += 1
        elif shown != decision.media_of.get(variant.image_s3_key):
            kept += 1
    return {"variant_images_set": to_set, "variant_images_kept": kept}


def _upload_entries(plan: PlanRecord, variables: dict[str, object]) -> dict[str, object]:
    """The build line's new-file entries (URL, alt, file name) by S3 key."""
    source = variables.get("input")
    files = source.get("files") if isinstance(source, dict) else None
    by_name = {
        entry.get("filename"): entry
        for entry in (files if isinstance(files, list) else [])
        if isinstance(entry, dict) and entry.get("originalSource")
    }
    return {m.s3_key: by_name.get(shopify_filename(m.s3_key, m.etag)) for m in plan.media}


def _file_entry(slot: FileSlot, uploads: dict[str, object]) -> object:
    if slot.media_id is not None:
        return {"id": slot.media_id}  # no alt: a kept image's alt text stays as it is
    entry = uploads.get(slot.s3_key or "")
    if entry is None:
        raise AssertionError(f"no upload entry for {slot.s3_key} in the build's line")
    return entry


def check_images_only(
    line: dict[str, object], product: ExportedProduct, decision: ImageDecision
) -> None:
    """The line of an existing product touches its images only, and lists every media it keeps.

    A failure here is a bug in bulkimg, never a user error: it stops the submit before anything
    is sent.
    """
    product_input = line.get("input")
    if not isinstance(product_input, dict) or set(product_input) != {"files"}:
        raise AssertionError(f"line for {product.id} sends more than files")
    if line.get("identifier") != {"id": product.id}:
        raise AssertionError(f"line for {product.id} does not name the product by id")
    listed = {f.get("id") for f in product_input["files"] if isinstance(f, dict)}
    removed = set(decision.removed_ids())
    for media in product.media:
        if media.id not in removed and media.id not in listed:
            raise AssertionError(f"line for {product.id} would delete media {media.id}")
        if media.id in removed and decision.fates.get(media.id) is Fate.FOREIGN:
            raise AssertionError(f"line for {product.id} would delete foreign media {media.id}")


def hold_back(files: list[Path], resolution: Path, limit: int) -> tuple[list[Path], list[str]]:
    """Keep only the first `limit` groups that have a line (a canary): their lines are rewritten
    into the same files, every later group's line is dropped and the group marked `held` (a
    later submit resolves it again). Returns the files left and the canary's group ids."""
    groups = list(read_resolution(resolution))
    canary = [g for g in groups if g.file and g.line][:limit]
    keep = {(g.file, g.line) for g in canary}
    renumbered: dict[tuple[str | None, int | None], int] = {}
    left: list[Path] = []
    for path in files:
        lines = path.read_bytes().splitlines()
        numbers = sorted(n for f, n in keep if f == path.name and n is not None)
        if not numbers:
            path.unlink()
            continue
        with _private(path) as sink:
            for new, old in enumerate(numbers, start=1):
                sink.write(lines[old - 1] + b"\n")
                renumbered[(path.name, old)] = new
        left.append(path)
    with _private(resolution) as sink:
        for group in groups:
            if (group.file, group.line) in keep:
                group = group.model_copy(update={"line": renumbered[(group.file, group.line)]})
            elif group.file:
                detail = f"held back: the canary sends {limit} products first"
                update = {"action": "held", "file": None, "line": None, "detail": detail}
                group = group.model_copy(update=update)
            sink.write(group.dump())
    return left, [g.group_id for g in canary]
