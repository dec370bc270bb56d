"""Turn the build's lines into what a submit sends to the shop as it is now.

The build writes each group's line in its *create* form (handle, title, options, variants, every
image by URL): it does not know the shop. Right before phase 1, submit exports the shop's
products once (a read-only bulk query) and rewrites every line from it:

- a group whose product exists (shop/index.py: by handle, else by SKU) gets append-only lines
  that name the product **by id**: the images that are missing, out of date or failed are
  appended (productUpdate with `media`, the product input holding only its id) and bulkimg's
  own copies that go are deleted (fileDelete; shop/adoption.py says which are bulkimg's). No line
  lists the images a product keeps, so one a merchant adds meanwhile cannot be lost; title,
  options, variants and every other product field are never sent. A product whose images
  already match gets no line.
- a new group is created from the catalog (its create form, with the status from settings), or
  skipped and reported with `--no-create`;
- a group in conflict (handle and SKUs disagree) gets no line and is reported.

Every line of an existing product is checked before it is written: only those two shapes, and
no deleted id that is not bulkimg's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from bulkimg.errors import ConfigError, InputFileError
from bulkimg.formats.lines import (
    FILE_DELETE,
    PRODUCT_SET,
    PRODUCT_UPDATE_MEDIA,
    CreateMediaInput,
    FileDeleteLine,
    FileSetInput,
    Line,
    ProductRef,
    ProductSetLine,
    ProductUpdateMediaLine,
    dump_line,
    parse_line,
)
from bulkimg.formats.plan import PlanRecord, read_plan
from bulkimg.formats.resolution import LineRef, ResolvedGroup, read_resolution
from bulkimg.outputs import create_private
from bulkimg.plan.names import shopify_filename
from bulkimg.s3.presign import url_expiry
from bulkimg.shop.adoption import Fate, ImageDecision, decide
from bulkimg.shop.index import Identity, Match, ShopIndex
from bulkimg.shop.variantimages import Choice, choose
from bulkimg.shopify.results import ExportedProduct, read_export

# The documents (bulkimg/documents/*.graphql) of phase 1's lines (formats/lines.py).
CREATE = PRODUCT_SET  # a product bulkimg creates
APPEND = PRODUCT_UPDATE_MEDIA  # new images appended to a product that exists
DELETE = FILE_DELETE  # bulkimg's own copies (out of date, failed, second) deleted


@dataclass(frozen=True, slots=True)
class ResolveRules:
    """What submit may do on the shop beyond images."""

    create: bool = True  # create products that do not exist (else skip and report them)
    create_status: str = "DRAFT"  # the status of a product bulkimg creates
    replace_variant_images: bool = False  # every variant gets its primary image, whatever it shows


@dataclass(frozen=True, slots=True)
class Relinker:
    """The image URLs of the lines submit sends: signed again now with fresh credentials
    (`presign`), or, without S3 settings, the build's, each checked to work until `valid_until`
    (Shopify fetches the images while the bulk operation runs)."""

    presign: Callable[[str], str] | None
    valid_until: datetime

    def relink(self, plan: PlanRecord, line: ProductSetLine) -> ProductSetLine:
        """The build line with the URL of every image signed again (or checked)."""
        if line.input.files is None:
            return line
        keys = {shopify_filename(m.s3_key, m.etag): m.s3_key for m in plan.media}
        return line.model_copy(
            update={
                "input": line.input.model_copy(
                    update={"files": [self._relinked(keys, entry) for entry in line.input.files]}
                )
            }
        )

    def _relinked(self, keys: dict[str, str], entry: FileSetInput) -> FileSetInput:
        key = keys.get(entry.filename)
        if self.presign is not None and key is not None:
            return entry.model_copy(update={"original_source": self.presign(key)})
        expires = url_expiry(entry.original_source)
        if expires is not None and expires < self.valid_until:
            raise ConfigError(
                f"the build's presigned URLs expire at {expires:%Y-%m-%d %H:%M} UTC, before"
                " Shopify could fetch the images: run `bulkimg build` again, or set"
                " AWS_S3_BUCKET so that submit signs them again"
            )
        return entry


_private = create_private  # the lines hold presigned URLs


def resolve_run(
    plan_path: Path,
    build_files: list[Path],
    export_path: Path | None,
    out_dir: Path,
    run_id: str,
    rules: ResolveRules,
    relinker: Relinker | None = None,
) -> tuple[list[tuple[Path, str]], Path]:
    """Write the run's resolved line files, (path, document) each, empty ones left out, and its
    resolution file; `relinker` signs every image URL again (or checks the build's)."""
    index = ShopIndex(read_export(export_path).values() if export_path else [])
    plans = {(r.file, r.line): r for r in read_plan(plan_path) if r.file and r.line}
    resolution = out_dir / f"resolution-{run_id}.jsonl"
    written: list[tuple[Path, str]] = []
    with _private(resolution) as record_out:
        for build_file in build_files:
            sinks = _Sinks(out_dir, f"productset-resolved-{run_id}", build_file.name)
            with build_file.open("rb") as source, sinks:
                for number, raw in enumerate(source, start=1):
                    plan = plans.get((build_file.name, number))
                    if plan is None or not raw.strip():
                        continue
                    variables = _build_line(build_file, number, raw)
                    if relinker is not None:
                        variables = relinker.relink(plan, variables)
                    group, lines = resolve_line(plan, variables, index, rules)
                    group.lines = [sinks.write(document, line) for document, line in lines]
                    record_out.write(group.dump())
            written.extend(sinks.written())
    return written, resolution


def _build_line(path: Path, number: int, raw: bytes) -> ProductSetLine:
    """Line `number` of a build file; InputFileError naming it when it is not a productSet line."""
    try:
        line = parse_line(PRODUCT_SET, raw)
    except ValueError as exc:
        first = str(exc).splitlines()[0]
        raise InputFileError(f"{path}:{number}: not a product_set line ({first})") from None
    assert isinstance(line, ProductSetLine)
    return line


class _Sinks:
    """One private file per document for the lines resolved from one build file."""

    def __init__(self, out_dir: Path, prefix: str, source: str) -> None:
        self.out_dir, self.prefix, self.source = out_dir, prefix, source
        self.files: dict[str, tuple[Path, BinaryIO, int]] = {}

    def write(self, document: str, line: Line) -> LineRef:
        if document not in self.files:
            path = self.out_dir / f"{self.prefix}-{document}-{self.source}"
            self.files[document] = (path, _private(path), 0)
        path, sink, count = self.files[document]
        sink.write(dump_line(line))
        self.files[document] = (path, sink, count + 1)
        return LineRef(document=document, file=path.name, line=count + 1)

    def written(self) -> list[tuple[Path, str]]:
        return [(path, document) for document, (path, _, _) in self.files.items()]

    def __enter__(self) -> _Sinks:
        return self

    def __exit__(self, *exc: object) -> None:
        for _, sink, _ in self.files.values():
            sink.close()


Lines = list[tuple[str, Line]]  # (document, its line)


def resolve_line(
    plan: PlanRecord, variables: ProductSetLine, index: ShopIndex, rules: ResolveRules
) -> tuple[ResolvedGroup, Lines]:
    """A group's resolution and the lines to send for it, by document (none: nothing to send)."""
    identity = index.resolve(plan.handle, [v.sku for v in plan.variants])
    base = ResolvedGroup(
        group_id=plan.group_id, handle=plan.handle, action="create", match=identity.match.value
    )
    if identity.match is Match.CONFLICT:
        return base.model_copy(update={"action": "conflict", "detail": identity.detail}), []
    if identity.match is Match.NEW:
        if not rules.create:
            detail = "no product with this handle or these SKUs (--no-create)"
            return base.model_copy(update={"action": "not_created", "detail": detail}), []
        line = _create_line(variables, rules)
        to_set = sum(1 for v in plan.variants if v.image_s3_key)
        uploads = [m.s3_key for m in plan.media]
        update = {"uploads": uploads, "uploaded": len(uploads), "variant_images_set": to_set}
        return base.model_copy(update=update), [(CREATE, line)]
    return _update(plan, variables, identity, base, rules)


def _create_line(variables: ProductSetLine, rules: ResolveRules) -> ProductSetLine:
    """The build's create form, without an identifier (a handle taken meanwhile fails the line
    with HANDLE_NOT_UNIQUE instead of updating that product), with the configured status."""
    product = variables.input.model_copy(update={"status": rules.create_status})
    return ProductSetLine(input=product)


def _update(
    plan: PlanRecord,
    variables: ProductSetLine,
    identity: Identity,
    base: ResolvedGroup,
    rules: ResolveRules,
) -> tuple[ResolvedGroup, Lines]:
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
            "dropped": decision.removed_ids() if sending else [],
            "uploaded": len(decision.uploads) if sending else 0,
            "replaced": decision.count(Fate.REPLACED) if sending else 0,
            "removed": decision.count(Fate.REMOVED) if sending else 0,
            "kept_foreign": decision.count(Fate.FOREIGN),
            "relink": _relinks(plan, product, decision, rules) if sending else {},
            **_variant_images(plan, product, decision, rules),
        }
    )
    if not sending:
        return group, []
    lines: Lines = []
    if decision.uploads:
        entries = _upload_entries(plan, variables)
        media = [_new_media(entries.get(key), key) for key in decision.uploads]
        lines.append(
            (APPEND, ProductUpdateMediaLine(product=ProductRef(id=product.id), media=media))
        )
    if decision.removed_ids():
        lines.append((DELETE, FileDeleteLine(file_ids=decision.removed_ids())))
    check_images_only(lines, product, decision)
    return group, lines


def _new_media(entry: FileSetInput | None, key: str) -> CreateMediaInput:
    """A CreateMediaInput from the build's file entry for `key` (its URL and alt text)."""
    if entry is None:
        raise AssertionError(f"no upload entry for {key} in the build's line")
    return CreateMediaInput(original_source=entry.original_source, alt=entry.alt)


def _relinks(
    plan: PlanRecord, product: ExportedProduct, decision: ImageDecision, rules: ResolveRules
) -> dict[str, str]:
    """Variants showing a copy the line drops of an image of their own Image_SKU: the S3 key
    they show again (the others get their primary image)."""
    if rules.replace_variant_images:
        return {}
    dropped = set(decision.removed_ids())
    image_sku_of = {m.s3_key: m.image_sku for m in plan.media}
    wanted = {v.sku: v.image_sku for v in plan.variants}
    relink: dict[str, str] = {}
    for variant in product.variants:
        shown = variant.media_ids[0] if variant.media_ids else None
        key = decision.copy_of.get(shown) if shown in dropped and shown else None
        if key is not None and image_sku_of.get(key) == wanted.get(variant.sku):
            relink[variant.id] = key
    return relink


def _variant_images(
    plan: PlanRecord, product: ExportedProduct, decision: ImageDecision, rules: ResolveRules
) -> dict[str, int]:
    """How many variants get their primary image, have theirs swapped for it, or keep theirs."""
    on_shop = {v.sku: v for v in product.variants}
    dropped = set(decision.removed_ids())
    image_sku_of = {m.s3_key: m.image_sku for m in plan.media}
    own = {mid: image_sku_of[key] for key, mid in decision.media_of.items() if key in image_sku_of}
    counts = {Choice.SET: 0, Choice.SWAP: 0, Choice.KEEP: 0, Choice.RIGHT: 0}
    for variant in plan.variants:
        found = on_shop.get(variant.sku)
        if found is None or not variant.image_s3_key:
            continue
        shown = found.media_ids[0] if found.media_ids else None
        primary = decision.media_of.get(variant.image_s3_key)
        visible = None if shown in dropped else shown
        choice = choose(variant.image_sku, primary, visible, own, rules.replace_variant_images)
        counts[choice] += 1
    return {
        "variant_images_set": counts[Choice.SET],
        "variant_images_swapped": counts[Choice.SWAP],
        "variant_images_kept": counts[Choice.KEEP],
    }


def _upload_entries(plan: PlanRecord, variables: ProductSetLine) -> dict[str, FileSetInput | None]:
    """The build line's new-file entries (URL, alt, file name) by S3 key."""
    by_name = {
        entry.filename: entry for entry in variables.input.files or [] if entry.original_source
    }
    return {m.s3_key: by_name.get(shopify_filename(m.s3_key, m.etag)) for m in plan.media}


def check_images_only(lines: Lines, product: ExportedProduct, decision: ImageDecision) -> None:
    """The lines of an existing product add images to it by id and delete only bulkimg's own
    copies; nothing else. A failure here is a bug in bulkimg, never a user error: it stops the
    submit before anything is sent."""
    removable = {m for m in decision.removed_ids() if decision.fates[m] is not Fate.FOREIGN}
    on_product = {m.id for m in product.media}
    for document, variables in lines:
        # The models hold nothing else (no unknown field): a product input of an id only, new
        # media of a URL and alt text each, file ids.
        if document == APPEND:
            if not isinstance(variables, ProductUpdateMediaLine):
                raise AssertionError(f"line for {product.id} sends more than new media")
            if variables.product.id != product.id:
                raise AssertionError(f"line for {product.id} appends to {variables.product.id}")
        elif document == DELETE:
            if not isinstance(variables, FileDeleteLine):
                raise AssertionError(f"line for {product.id} deletes more than files")
            for media_id in variables.file_ids:
                if media_id not in removable or media_id not in on_product:
                    raise AssertionError(f"line for {product.id} would delete media {media_id}")
        else:
            raise AssertionError(f"line for {product.id} sends {document}")


def hold_back(
    files: list[tuple[Path, str]], resolution: Path, limit: int
) -> tuple[list[tuple[Path, str]], list[str]]:
    """Keep only the first `limit` groups that have lines (a canary): their lines are rewritten
    into the same files, every later group's lines are dropped and the group marked `held` (a
    later submit resolves it again). Returns the files left and the canary's group ids."""
    groups = list(read_resolution(resolution))
    canary = [g for g in groups if g.lines][:limit]
    keep = {(ref.file, ref.line) for g in canary for ref in g.lines}
    renumbered: dict[tuple[str, int], int] = {}
    left: list[tuple[Path, str]] = []
    for path, document in files:
        lines = path.read_bytes().splitlines()
        numbers = sorted(n for f, n in keep if f == path.name)
        if not numbers:
            path.unlink()
            continue
        with _private(path) as sink:
            for new, old in enumerate(numbers, start=1):
                sink.write(lines[old - 1] + b"\n")
                renumbered[(path.name, old)] = new
        left.append((path, document))
    canary_ids = {g.group_id for g in canary}
    with _private(resolution) as sink:
        for group in groups:
            if group.group_id in canary_ids:
                refs = [
                    ref.model_copy(update={"line": renumbered[(ref.file, ref.line)]})
                    for ref in group.lines
                ]
                group = group.model_copy(update={"lines": refs})
            elif group.lines:
                detail = f"held back: the canary sends {limit} products first"
                group = group.model_copy(update={"action": "held", "lines": [], "detail": detail})
            sink.write(group.dump())
    return left, [g.group_id for g in canary]
