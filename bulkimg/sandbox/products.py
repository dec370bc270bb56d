"""The product mutations bulkimg sends, with Shopify's rules: ``productSet`` (list fields replaced,
omitted fields untouched) and ``productVariantAppendMedia`` (one READY media per variant).

Each call is all-or-nothing: every input is checked against the current state inside one store
transaction before anything is written, so a call that ends with userErrors changes nothing.
Inputs arrive as GraphQL-coerced values (types already checked against the schema).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Final, cast
from urllib.parse import unquote, urlsplit

from bulkimg.sandbox.config import SandboxConfig
from bulkimg.sandbox.gids import parse_gid
from bulkimg.sandbox.store import (
    Media,
    NewVariant,
    Product,
    ProductOption,
    Store,
    VariantRow,
)
from bulkimg.statuses import MediaStatus

Input = Mapping[str, object]

MAX_OPTIONS: Final = 3
MAX_VARIANTS: Final = 2048
MAX_VARIANT_MEDIA_PAIRS: Final = 100
DAY: Final = 24 * 3600.0

# The fields the sandbox models; any other field given is refused rather than ignored, so no
# one believes it was applied.
_PRODUCT_FIELDS: Final = frozenset(
    {
        "id",
        "handle",
        "title",
        "descriptionHtml",
        "vendor",
        "productType",
        "status",
        "tags",
        "productOptions",
        "variants",
        "files",
    }
)
_VARIANT_FIELDS: Final = frozenset(
    {"id", "sku", "optionValues", "price", "compareAtPrice", "barcode", "position", "file"}
)
_OPTION_FIELDS: Final = frozenset({"id", "name", "position", "values"})


@dataclass(frozen=True, slots=True)
class UserErrorRecord:
    field: tuple[str, ...] | None
    message: str
    code: str | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a mutation did: the product (None after errors), new media to fetch, variants."""

    product_id: int | None
    errors: tuple[UserErrorRecord, ...] = ()
    media_to_process: tuple[int, ...] = ()
    variant_ids: tuple[int, ...] = ()


class Errors:
    """The userErrors of one call (all or nothing: any error, nothing changes)."""

    def __init__(self) -> None:
        self.items: list[UserErrorRecord] = []

    def add(self, path: Sequence[str | int], message: str, code: str | None) -> None:
        self.items.append(UserErrorRecord(tuple(str(p) for p in path), message, code))

    def not_emulated(
        self, path: Sequence[str | int], what: str, code: str | None = "INVALID_INPUT"
    ) -> None:
        self.add(path, f"{what} is not emulated by the sandbox shop", code)

    def __bool__(self) -> bool:
        return bool(self.items)


def _mappings(value: object) -> list[Input]:
    return [cast(Input, item) for item in value] if isinstance(value, list) else []


def _text(data: Input, key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def _check_fields(
    data: Input, known: frozenset[str], path: tuple[str, ...], errors: Errors
) -> None:
    for name, value in data.items():
        if name not in known and value is not None:
            errors.not_emulated((*path, name), f"`{name}`")


# --- productSet -------------------------------------------------------------------------------


@dataclass(slots=True)
class _OptionPlan:
    id: int | None
    name: str
    values: tuple[str, ...]


@dataclass(slots=True)
class _FilePlan:
    media_id: int | None
    alt: str | None
    source: str | None = None
    filename: str | None = None
    failure: tuple[str, str] | None = None


@dataclass(slots=True)
class _VariantPlan:
    row: NewVariant
    file_index: int | None = None


@dataclass(slots=True)
class _Plan:
    options: list[_OptionPlan] | None = None
    variants: list[_VariantPlan] | None = None
    files: list[_FilePlan] | None = None
    new_media: list[int] = field(default_factory=list)


def product_set(
    store: Store,
    data: Input,
    identifier: Input | None,
    *,
    synchronous: bool,
    now: float,
    config: SandboxConfig,
) -> Outcome:
    """Create or update a product from ``input`` (see the module docstring)."""
    return _ProductSet(store, data, identifier or {}, now, config).run(synchronous)


class _ProductSet:
    def __init__(
        self, store: Store, data: Input, identifier: Input, now: float, config: SandboxConfig
    ) -> None:
        self.store = store
        self.data = data
        self.identifier = identifier
        self.now = now
        self.config = config
        self.errors = Errors()

    def run(self, synchronous: bool) -> Outcome:
        if not synchronous:
            self.errors.not_emulated(("synchronous",), "Asynchronous productSet")
        _check_fields(self.data, _PRODUCT_FIELDS, ("input",), self.errors)
        with self.store.transaction():
            target = self.target()
            if self.errors:
                return Outcome(None, tuple(self.errors.items))
            plan = self.plan(target)
            handle = self.handle(target)
            if self.errors:
                return Outcome(None, tuple(self.errors.items))
            product_id = self.write(target, handle, plan)
        return Outcome(product_id, media_to_process=tuple(plan.new_media))

    # which product

    def target(self) -> Product | None:
        """The product to update; None to create one."""
        ident, data = self.identifier, self.data
        if ident.get("customId") is not None:
            self.errors.not_emulated(("identifier", "customId"), "`customId`")
            return None
        if ident and data.get("id") is not None:
            self.errors.add(
                ("input", "id"),
                "The id field is not allowed if identifier is provided.",
                "ID_NOT_ALLOWED",
            )
            return None
        if isinstance(ident.get("id"), str):
            return self.existing(cast(str, ident["id"]), ("identifier", "id"))
        if isinstance(data.get("id"), str):
            return self.existing(cast(str, data["id"]), ("input", "id"))
        handle = _text(ident, "handle")
        if handle is None:
            return None
        given = _text(data, "handle")
        if given is not None and given != handle:
            self.errors.add(
                ("input", "handle"),
                "The identifier value does not match the value of the corresponding field in"
                " the input.",
                "INPUT_MISMATCH",
            )
            return None
        return self.store.product_by_handle(handle)

    def existing(self, gid: str, path: tuple[str, ...]) -> Product | None:
        number = parse_gid(gid, "Product")
        product = self.store.product(number) if number is not None else None
        if product is None:
            self.errors.add(path, "Product does not exist", "PRODUCT_DOES_NOT_EXIST")
        return product

    def handle(self, target: Product | None) -> str:
        wanted = _text(self.identifier, "handle") or _text(self.data, "handle")
        if wanted is None:
            if target is not None:
                return target.handle
            return self.free_handle(_slug(_text(self.data, "title") or "product"))
        holder = self.store.product_by_handle(wanted)
        if holder is not None and (target is None or holder.id != target.id):
            self.errors.add(
                ("input", "handle"),
                f"Handle '{wanted}' already in use. Please provide a new handle.",
                "HANDLE_NOT_UNIQUE",
            )
        return wanted

    def free_handle(self, base: str) -> str:
        candidate, n = base, 0
        while self.store.product_by_handle(candidate) is not None:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    # what changes

    def plan(self, target: Product | None) -> _Plan:
        data, plan = self.data, _Plan()
        has_options = data.get("productOptions") is not None
        has_variants = data.get("variants") is not None
        if has_variants and not has_options:
            self.errors.add(
                ("input", "productOptions"),
                "Must specify product options when updating variants.",
                "PRODUCT_OPTIONS_INPUT_MISSING",
            )
        if has_options and not has_variants:
            self.errors.add(
                ("input", "variants"),
                "Must specify variants when updating options.",
                "VARIANTS_INPUT_MISSING",
            )
        if target is None:
            self.check_create(has_options, has_variants)
        existing_media = self.store.media_of_product(target.id) if target else []
        if data.get("files") is not None:
            plan.files = self.plan_files(_mappings(data["files"]), existing_media)
            limit = self.config.max_media_per_product
            if len(plan.files) > limit:
                # PRODUCT_MEDIA_LIMIT_EXCEEDED is a MediaUserErrorCode; ProductSetUserErrorCode
                # has no such value, so the code is INVALID_INPUT and the message names it.
                self.errors.add(
                    ("input", "files"),
                    f"Exceeded the limit of {limit} media per product"
                    " (PRODUCT_MEDIA_LIMIT_EXCEEDED).",
                    "INVALID_INPUT",
                )
        if has_options:
            existing_options = self.store.options(target.id) if target else []
            plan.options = self.plan_options(_mappings(data["productOptions"]), existing_options)
        if has_variants and plan.options is not None:
            existing_variants = self.store.variants(target.id) if target else []
            plan.variants = self.plan_variants(
                _mappings(data["variants"]), plan.options, existing_variants, plan.files
            )
        return plan

    def check_create(self, has_options: bool, has_variants: bool) -> None:
        """Creating needs a title, options and variants (Shopify's own create example has all
        three; requiring them is the sandbox's stricter reading)."""
        if not _text(self.data, "title"):
            self.errors.add(("input", "title"), "Title can't be blank", "INVALID_INPUT")
        if not has_options and not has_variants:
            self.errors.add(
                ("input", "productOptions"),
                "Must specify product options when creating a product.",
                "PRODUCT_OPTIONS_INPUT_MISSING",
            )
            self.errors.add(
                ("input", "variants"),
                "Must specify variants when creating a product.",
                "VARIANTS_INPUT_MISSING",
            )

    def plan_options(
        self, given: list[Input], existing: list[ProductOption]
    ) -> list[_OptionPlan] | None:
        """Options are matched by ``id`` only: an option without ``id`` is a new option even when
        an existing one has its name, and the existing one, not listed, is deleted (the sandbox's
        reading of "options are replaced as a whole": the harshest one)."""
        path = ("input", "productOptions")
        if len(given) > MAX_OPTIONS:
            self.errors.add(path, f"Options over limit ({MAX_OPTIONS}).", "OPTIONS_OVER_LIMIT")
            return None
        by_id = {o.id: o for o in existing}
        planned: list[tuple[int, int, _OptionPlan]] = []
        for i, option in enumerate(given):
            at = (*path, str(i))
            _check_fields(option, _OPTION_FIELDS, at, self.errors)
            option_id: int | None = None
            if isinstance(option.get("id"), str):
                option_id = parse_gid(cast(str, option["id"]), "ProductOption")
                if option_id not in by_id:
                    self.errors.add((*at, "id"), "Option does not exist.", "OPTION_DOES_NOT_EXIST")
                    continue
                if any(p.id == option_id for _, _, p in planned):
                    self.errors.add((*at, "id"), "Duplicated value.", "DUPLICATED_VALUE")
                    continue
            name = _text(option, "name") or (by_id[option_id].name if option_id else None)
            if not name:
                self.errors.add((*at, "name"), "Option name can't be blank.", "INVALID_INPUT")
                continue
            if any(p.name == name for _, _, p in planned):
                self.errors.add((*at, "name"), "Duplicated option name.", "DUPLICATED_OPTION_NAME")
                continue
            values = self.option_values(_mappings(option.get("values")), (*at, "values"))
            position = option.get("position")
            order = position if isinstance(position, int) else i + 1
            planned.append((order, i, _OptionPlan(option_id, name, values)))
        return [p for _, _, p in sorted(planned, key=lambda item: (item[0], item[1]))]

    def option_values(self, given: list[Input], path: tuple[str, ...]) -> tuple[str, ...]:
        if not given:
            self.errors.add(
                path,
                "Each option must have at least one option value specified.",
                "OPTION_VALUES_MISSING",
            )
        names: list[str] = []
        for j, value in enumerate(given):
            if value.get("id") is not None:
                self.errors.not_emulated((*path, j, "id"), "Option value `id`")
                continue
            name = _text(value, "name")
            if not name:
                self.errors.add((*path, j, "name"), "Option value can't be blank.", "INVALID_INPUT")
            elif name in names:
                self.errors.add(
                    (*path, j, "name"), "Duplicated option value.", "DUPLICATED_OPTION_VALUE"
                )
            else:
                names.append(name)
        return tuple(names)

    def plan_files(self, given: list[Input], existing: list[Media]) -> list[_FilePlan]:
        by_id = {m.id: m for m in existing}
        kept_ids = {
            parse_gid(cast(str, f["id"]), "MediaImage")
            for f in given
            if isinstance(f.get("id"), str)
        }
        names_in_use = {m.filename for m in existing if m.id in kept_ids}
        plans: list[_FilePlan] = []
        for i, file in enumerate(given):
            at = ("input", "files", str(i))
            content_type = file.get("contentType")
            if content_type not in (None, "IMAGE"):
                self.errors.not_emulated((*at, "contentType"), f"contentType {content_type}")
                continue
            if isinstance(file.get("id"), str):
                plan = self.kept_file(file, at, by_id, plans)
            else:
                plan = self.new_file(file, at, names_in_use)
            if plan is not None:
                plans.append(plan)
        return plans

    def kept_file(
        self, file: Input, at: tuple[str, ...], by_id: dict[int, Media], plans: list[_FilePlan]
    ) -> _FilePlan | None:
        if file.get("originalSource") is not None:
            self.errors.add(
                at,
                "Give either `id` (an existing file) or `originalSource`, not both.",
                "INVALID_INPUT",
            )
            return None
        media_id = parse_gid(cast(str, file["id"]), "MediaImage")
        media = by_id.get(media_id) if media_id is not None else None
        if media is None:
            self.errors.add(
                (*at, "id"), f"File {file['id']} does not exist on this product.", "INVALID_INPUT"
            )
            return None
        if any(p.media_id == media.id for p in plans):
            self.errors.add((*at, "id"), "Duplicated value.", "DUPLICATED_VALUE")
            return None
        alt = _text(file, "alt") if "alt" in file else media.alt
        return _FilePlan(media.id, alt)

    def new_file(
        self, file: Input, at: tuple[str, ...], names_in_use: set[str]
    ) -> _FilePlan | None:
        source = _text(file, "originalSource")
        if source is None:
            self.errors.add(at, "A file needs `id` or `originalSource`.", "INVALID_INPUT")
            return None
        if urlsplit(source).scheme not in ("http", "https"):
            self.errors.add(
                (*at, "originalSource"), "originalSource must be an http(s) URL.", "INVALID_INPUT"
            )
            return None
        mode = _text(file, "duplicateResolutionMode") or "APPEND_UUID"
        if mode == "REPLACE":
            self.errors.not_emulated((*at, "duplicateResolutionMode"), "REPLACE")
            return None
        name = _text(file, "filename") or name_from_url(source)
        if not name:
            self.errors.add((*at, "filename"), "Cannot tell the file's name.", "INVALID_INPUT")
            return None
        failure = None
        if name in names_in_use or self.store.filename_taken(name):
            if mode == "APPEND_UUID":
                name = with_uuid(name)
            else:
                failure = ("DUPLICATE_FILENAME_ERROR", f"A file named {name} already exists.")
        names_in_use.add(name)
        return _FilePlan(None, _text(file, "alt"), source, name, failure)

    def plan_variants(
        self,
        given: list[Input],
        options: list[_OptionPlan],
        existing: list[VariantRow],
        files: list[_FilePlan] | None,
    ) -> list[_VariantPlan]:
        if len(given) > MAX_VARIANTS:
            self.errors.add(
                ("input", "variants"),
                "Number of product variants exceeds shop limit.",
                "VARIANTS_OVER_LIMIT",
            )
            return []
        by_id = {v.id: v for v in existing}
        claimed: set[int] = set()
        seen: set[tuple[tuple[str, str], ...]] = set()
        plans: list[tuple[int, int, _VariantPlan]] = []
        for i, variant in enumerate(given):
            at = ("input", "variants", str(i))
            _check_fields(variant, _VARIANT_FIELDS, at, self.errors)
            selected = self.selected_options(variant, options, at)
            if selected is None:
                continue
            if selected in seen:
                values = " / ".join(value for _, value in selected)
                self.errors.add(
                    (*at, "optionValues"),
                    f"The variant '{values}' already exists.",
                    "INVALID_VARIANT",
                )
                continue
            seen.add(selected)
            ok, match = self.matching_variant(variant, by_id, claimed, at)
            if not ok:
                continue
            file_index = self.variant_file(variant, files, at)
            position = variant.get("position")
            order = position if isinstance(position, int) else i + 1
            row = _variant_row(variant, match, selected)
            plans.append((order, i, _VariantPlan(row, file_index)))
        ordered = [p for _, _, p in sorted(plans, key=lambda item: (item[0], item[1]))]
        for position, plan in enumerate(ordered, start=1):
            plan.row = _replace_position(plan.row, position)
        self.check_variant_throttle(len(existing), ordered)
        return ordered

    def check_variant_throttle(self, existing: int, planned: list[_VariantPlan]) -> None:
        """Once the shop holds ``variant_throttle_threshold`` variants (before or after this
        call), at most ``variant_throttle_per_day`` variants may be created per rolling day,
        those created earlier that day (deleted since or not) included."""
        new = sum(1 for p in planned if p.row.id is None)
        if not new:
            return
        before = self.store.variant_count()
        after = before - existing + len(planned)
        if max(before, after) < self.config.variant_throttle_threshold:
            return
        per_day = self.config.variant_throttle_per_day
        if self.store.variants_created_since(self.now - DAY) + new > per_day:
            # Not a ProductSetUserErrorCode value: VARIANTS_OVER_LIMIT ("exceeds shop limit")
            # is the closest one; the message names the throttle.
            self.errors.add(
                ("input", "variants"),
                f"Variant creation throttle exceeded (VARIANT_THROTTLE_EXCEEDED): the shop holds"
                f" {self.config.variant_throttle_threshold} or more variants, so at most"
                f" {per_day} new variants can be created per day.",
                "VARIANTS_OVER_LIMIT",
            )

    def matching_variant(
        self, variant: Input, by_id: dict[int, VariantRow], claimed: set[int], at: tuple[str, ...]
    ) -> tuple[bool, VariantRow | None]:
        """(False, None) after an error, else (True, the existing variant this entry updates or
        None for a new one).

        Matched by ``id`` only: ProductVariantSetInput.id "specifies the product variant to
        update or create a new variant if absent", so an entry without ``id`` is always a new
        variant, never an existing one with the same option values or SKU."""
        if not isinstance(variant.get("id"), str):
            return True, None
        number = parse_gid(cast(str, variant["id"]), "ProductVariant")
        found = by_id.get(number) if number is not None else None
        if found is None:
            self.errors.add(
                (*at, "id"), "Product variant does not exist.", "PRODUCT_VARIANT_DOES_NOT_EXIST"
            )
            return False, None
        if found.id in claimed:
            self.errors.add((*at, "id"), "Duplicated value.", "DUPLICATED_VALUE")
            return False, None
        claimed.add(found.id)
        return True, found

    def selected_options(
        self, variant: Input, options: list[_OptionPlan], at: tuple[str, ...]
    ) -> tuple[tuple[str, str], ...] | None:
        chosen: dict[str, str] = {}
        ok = True
        for k, given in enumerate(_mappings(variant.get("optionValues"))):
            here = (*at, "optionValues", str(k))
            if given.get("id") is not None or given.get("linkedMetafieldValue") is not None:
                self.errors.not_emulated(here, "Option value ids and linked metafields")
                ok = False
                continue
            option = self.option_for(given, options)
            value = _text(given, "name")
            if option is None:
                self.errors.add(here, "Option does not exist.", "OPTION_DOES_NOT_EXIST")
                ok = False
            elif value not in option.values:
                self.errors.add(
                    (*here, "name"), "Option value does not exist.", "OPTION_VALUE_DOES_NOT_EXIST"
                )
                ok = False
            elif option.name in chosen:
                self.errors.add(
                    here, f"More than one value for option '{option.name}'.", "INVALID_VARIANT"
                )
                ok = False
            else:
                chosen[option.name] = value
        missing = [o.name for o in options if o.name not in chosen]
        if ok and missing:
            self.errors.add(
                (*at, "optionValues"),
                f"The variant has no value for option {', '.join(missing)}.",
                "INVALID_VARIANT",
            )
            ok = False
        return tuple((o.name, chosen[o.name]) for o in options) if ok else None

    @staticmethod
    def option_for(given: Input, options: list[_OptionPlan]) -> _OptionPlan | None:
        if isinstance(given.get("optionId"), str):
            number = parse_gid(cast(str, given["optionId"]), "ProductOption")
            return next((o for o in options if o.id is not None and o.id == number), None)
        name = _text(given, "optionName")
        return next((o for o in options if o.name == name), None)

    def variant_file(
        self, variant: Input, files: list[_FilePlan] | None, at: tuple[str, ...]
    ) -> int | None:
        file = variant.get("file")
        if not isinstance(file, Mapping):
            return None
        for index, plan in enumerate(files or []):
            if isinstance(file.get("id"), str):
                if plan.media_id == parse_gid(cast(str, file["id"]), "MediaImage"):
                    return index
            elif plan.source is not None and plan.source == file.get("originalSource"):
                return index
        self.errors.add(
            (*at, "file"),
            "A variant's file must also be specified in the product's `files`.",
            "INVALID_INPUT",
        )
        return None

    # write

    def write(self, target: Product | None, handle: str, plan: _Plan) -> int:
        product = self.updated_product(target, handle)
        if target is None:
            product_id = self.store.insert_product(product)
        else:
            product_id = target.id
            self.store.update_product(product)
        if plan.options is not None:
            self.store.replace_options(product_id, [(o.id, o.name, o.values) for o in plan.options])
        media_ids = self.write_files(product_id, plan) if plan.files is not None else []
        if plan.variants is not None:
            rows = [v.row for v in plan.variants]
            variant_ids = self.store.replace_variants(product_id, rows, self.now)
            for variant_plan, variant_id in zip(plan.variants, variant_ids, strict=True):
                if variant_plan.file_index is not None:
                    self.store.link_variant_media(variant_id, media_ids[variant_plan.file_index])
        return product_id

    def write_files(self, product_id: int, plan: _Plan) -> list[int]:
        files = plan.files or []
        self.store.delete_media_except(product_id, [f.media_id for f in files if f.media_id])
        media_ids = []
        for position, file in enumerate(files, start=1):
            if file.media_id is not None:
                self.store.update_media_placement(file.media_id, position, file.alt, self.now)
                media_ids.append(file.media_id)
                continue
            assert file.source is not None and file.filename is not None
            media_id = self.store.insert_media(
                product_id, position, file.alt, file.filename, file.source, self.now, file.failure
            )
            media_ids.append(media_id)
            if file.failure is None:
                plan.new_media.append(media_id)
        return media_ids

    def updated_product(self, target: Product | None, handle: str) -> Product:
        data = self.data

        def pick(key: str, current: str) -> str:
            value = data.get(key)
            return value if isinstance(value, str) else current

        tags = data.get("tags")
        return Product(
            id=target.id if target else 0,
            handle=handle,
            title=pick("title", target.title if target else ""),
            status=pick("status", target.status if target else "ACTIVE"),
            vendor=pick("vendor", target.vendor if target else ""),
            product_type=pick("productType", target.product_type if target else ""),
            description_html=pick("descriptionHtml", target.description_html if target else ""),
            tags=tuple(cast(list[str], tags))
            if isinstance(tags, list)
            else (target.tags if target else ()),
            created_at=target.created_at if target else self.now,
            updated_at=self.now,
        )


def _variant_row(
    variant: Input, existing: VariantRow | None, selected: tuple[tuple[str, str], ...]
) -> NewVariant:
    def pick(key: str, current: str | None) -> str | None:
        return cast(str | None, variant[key]) if key in variant else current

    return NewVariant(
        id=existing.id if existing else None,
        position=0,
        sku=pick("sku", existing.sku if existing else None),
        price=pick("price", existing.price if existing else None) or "0.00",
        compare_at_price=pick("compareAtPrice", existing.compare_at_price if existing else None),
        barcode=pick("barcode", existing.barcode if existing else None),
        selected=selected,
    )


def _replace_position(row: NewVariant, position: int) -> NewVariant:
    return NewVariant(
        row.id, position, row.sku, row.price, row.compare_at_price, row.barcode, row.selected
    )


def name_from_url(url: str) -> str:
    """The last path segment of a URL, without its query string."""
    return PurePosixPath(unquote(urlsplit(url).path)).name


def with_uuid(name: str) -> str:
    path = PurePosixPath(name)
    return f"{path.stem}_{uuid.uuid4()}{path.suffix}"


def _slug(title: str) -> str:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-") or "product"


# --- productVariantAppendMedia ----------------------------------------------------------------


def variant_append_media(store: Store, product_gid: str, pairs: Sequence[Input]) -> Outcome:
    """Attach one READY media of the product to each listed variant (all or nothing)."""
    errors = Errors()
    product = pairs_product(store, product_gid, pairs, errors)
    if product is None:
        return Outcome(None, tuple(errors.items))
    with store.transaction():
        links = _checked_links(store, product.id, pairs, errors)
        if errors:
            return Outcome(None, tuple(errors.items))
        for variant_id, media_id in links:
            store.link_variant_media(variant_id, media_id)
    return Outcome(product.id, variant_ids=tuple(variant_id for variant_id, _ in links))


def _checked_links(
    store: Store, product_id: int, pairs: Sequence[Input], errors: Errors
) -> list[tuple[int, int]]:
    variants = {v.id for v in store.variants(product_id)}
    media = {m.id: m for m in store.media_of_product(product_id)}
    links: list[tuple[int, int]] = []
    seen: set[int] = set()
    for i, pair in enumerate(pairs):
        at = ("variantMedia", str(i))
        variant_id = pair_variant(pair, at, variants, seen, errors)
        media_ids = cast(list[str], pair["mediaIds"])
        if variant_id is None:
            continue
        if len(media_ids) != 1:
            code = "TOO_MANY_MEDIA_PER_INPUT_PAIR" if media_ids else "MISSING_ARGUMENTS"
            errors.add(
                (*at, "mediaIds"), "Only one mediaId is allowed per variant-media input pair.", code
            )
        else:
            link = _checked_link(store, variant_id, media_ids[0], media, (*at, "mediaIds"), errors)
            if link is not None:
                links.append(link)
    return links


def pairs_product(
    store: Store, product_gid: str, pairs: Sequence[Input], errors: Errors
) -> Product | None:
    """The product of a call with variant-media pairs, when it exists and the pairs are at most
    100 (else None, with the error)."""
    number = parse_gid(product_gid, "Product")
    product = store.product(number) if number is not None else None
    if product is None:
        errors.add(("productId",), "Product does not exist.", "PRODUCT_DOES_NOT_EXIST")
        return None
    if len(pairs) > MAX_VARIANT_MEDIA_PAIRS:
        errors.add(
            ("variantMedia",),
            f"Exceeded the maximum number of {MAX_VARIANT_MEDIA_PAIRS} variant-media pairs per"
            " mutation call.",
            "MAXIMUM_VARIANT_MEDIA_PAIRS_EXCEEDED",
        )
        return None
    return product


def pair_variant(
    pair: Input, at: tuple[str, ...], variants: set[int], seen: set[int], errors: Errors
) -> int | None:
    """The variant of a variant-media pair: on the product and in no earlier pair (else None,
    with the error); remembered in `seen`."""
    variant_id = parse_gid(cast(str, pair["variantId"]), "ProductVariant")
    if variant_id is None or variant_id not in variants:
        errors.add(
            (*at, "variantId"),
            "Variant does not exist on the given product.",
            "PRODUCT_VARIANT_DOES_NOT_EXIST_ON_PRODUCT",
        )
        return None
    if variant_id in seen:
        errors.add(
            (*at, "variantId"),
            "Variant specified in more than one pair.",
            "PRODUCT_VARIANT_SPECIFIED_MULTIPLE_TIMES",
        )
        return None
    seen.add(variant_id)
    return variant_id


def _checked_link(
    store: Store,
    variant_id: int,
    media_gid: str,
    media: dict[int, Media],
    at: tuple[str, ...],
    errors: Errors,
) -> tuple[int, int] | None:
    media_id = parse_gid(media_gid, "MediaImage")
    found = media.get(media_id) if media_id is not None else None
    if found is None:
        errors.add(
            at, "Media does not exist on the given product.", "MEDIA_DOES_NOT_EXIST_ON_PRODUCT"
        )
    elif found.status is not MediaStatus.READY:
        errors.add(at, "Non-ready media are not supported.", "NON_READY_MEDIA")
    elif store.variant_media(variant_id) is not None:
        errors.add(
            at, "Product variant already has attached media.", "PRODUCT_VARIANT_ALREADY_HAS_MEDIA"
        )
    else:
        return variant_id, found.id
    return None
