"""The JSONL lines of bulkimg's bulk mutations: the variables of one document per line, one model
per document (`bulkimg/documents/<document>.graphql`), and the one reader and writer of their
files (the build's productset files, submit's resolved and phase 2 files, a retry's lines).

Fields keep their GraphQL names in JSON (camelCase, by alias; Python uses snake_case). A field
that is "left out" (see `_OMITTED`) is absent from the JSON when it is None, never null: a
productSet line without `files` keeps the product's media, one with `"files": null` would not
be valid and one with `[]` would wipe them. Every other field is always written, null included.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer
from pydantic.alias_generators import to_camel

from bulkimg.formats.jsonl import dump_model, read_models, write_models

# The documents (bulkimg/documents/*.graphql) bulkimg runs in bulk.
PRODUCT_SET = "product_set"  # a product bulkimg creates (the build's create form)
PRODUCT_UPDATE_MEDIA = "product_update_media"  # new images appended to a product that exists
FILE_DELETE = "file_delete"  # bulkimg's own copies deleted
VARIANT_DETACH_MEDIA = "variant_detach_media"  # phase 2: a variant's image detached
VARIANT_APPEND_MEDIA = "variant_append_media"  # phase 2: a variant's image attached
PRODUCT_REORDER_MEDIA = "product_reorder_media"  # phase 2: bulkimg's images put first again


class LinePart(BaseModel):
    """A part of a line: frozen, no unknown field, GraphQL (camelCase) names in JSON."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    # Fields (Python names) left out of the JSON when None, instead of written as null.
    _OMITTED: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _leave_out(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        data: dict[str, object] = handler(self)
        for name in self._OMITTED:
            if getattr(self, name) is None:
                field = type(self).model_fields[name]
                data.pop(field.alias or name, None)
                data.pop(name, None)
        return data


# -- productSet (graphql: ProductSetInput, ProductSetIdentifiers) -------------------------------


class ProductSetIdentifier(LinePart):
    handle: str


class OptionValue(LinePart):
    name: str


class ProductOption(LinePart):
    name: str
    values: list[OptionValue]


class VariantOptionValue(LinePart):
    option_name: str
    name: str


class ProductSetVariant(LinePart):
    sku: str
    option_values: list[VariantOptionValue]


class FileSetInput(LinePart):
    """An image of a productSet line, by URL (`filename` names it on the shop)."""

    original_source: str
    alt: str | None
    content_type: Literal["IMAGE"] = "IMAGE"
    filename: str


class ProductSetProduct(LinePart):
    """A product in its create form; `files` left out when the group has no usable image (a
    missing image never wipes a product's media), `status` set only by submit."""

    _OMITTED: ClassVar[frozenset[str]] = frozenset({"files", "status"})

    handle: str
    title: str
    product_options: list[ProductOption]
    variants: list[ProductSetVariant]
    files: list[FileSetInput] | None = None
    status: str | None = None


class ProductSetLine(LinePart):
    """product_set: `identifier` in the build's lines, left out in the create lines submit sends
    (a handle taken meanwhile fails the line instead of updating that product)."""

    _OMITTED: ClassVar[frozenset[str]] = frozenset({"identifier"})

    identifier: ProductSetIdentifier | None = None
    input: ProductSetProduct


# -- productUpdate with media, fileDelete -------------------------------------------------------


class ProductRef(LinePart):
    id: str


class CreateMediaInput(LinePart):
    original_source: str
    alt: str | None
    media_content_type: Literal["IMAGE"] = "IMAGE"


class ProductUpdateMediaLine(LinePart):
    """product_update_media: new images appended to a product that exists, named by id only."""

    product: ProductRef
    media: list[CreateMediaInput]


class FileDeleteLine(LinePart):
    """file_delete: bulkimg's own copies deleted."""

    file_ids: list[str]


# -- phase 2 ------------------------------------------------------------------------------------


class VariantMediaPair(LinePart):
    variant_id: str
    media_ids: list[str]


class VariantMediaLine(LinePart):
    """variant_append_media and variant_detach_media: (variant, media) pairs of one product."""

    product_id: str
    variant_media: list[VariantMediaPair]


class MoveInput(LinePart):
    id: str
    new_position: str  # Shopify's UnsignedInt64, a string


class ReorderMediaLine(LinePart):
    """product_reorder_media: a product's media moved, in order."""

    id: str
    moves: list[MoveInput]


Line = (
    ProductSetLine | ProductUpdateMediaLine | FileDeleteLine | VariantMediaLine | ReorderMediaLine
)
Phase2Variables = VariantMediaLine | ReorderMediaLine

LINE_MODELS: dict[str, type[Line]] = {
    PRODUCT_SET: ProductSetLine,
    PRODUCT_UPDATE_MEDIA: ProductUpdateMediaLine,
    FILE_DELETE: FileDeleteLine,
    VARIANT_DETACH_MEDIA: VariantMediaLine,
    VARIANT_APPEND_MEDIA: VariantMediaLine,
    PRODUCT_REORDER_MEDIA: ReorderMediaLine,
}


def line_model(document: str) -> type[Line]:
    """The model of the lines of `document`; LookupError for a document not run in bulk."""
    try:
        return LINE_MODELS[document]
    except KeyError:
        raise LookupError(f"no line model for the document {document!r}") from None


def dump_line(line: Line) -> bytes:
    """One JSONL line of `line`, exactly as Shopify gets it."""
    return dump_model(line)


def parse_line(document: str, raw: bytes | str) -> Line:
    """One line of a file of `document` (ValueError when it is not one)."""
    return line_model(document).model_validate_json(raw)


def read_lines(path: Path, document: str) -> Iterator[Line]:
    """The lines of a file of `document`, one at a time (blank lines skipped); a line that is not
    one is an InputFileError naming the file and line."""
    return read_models(path, line_model(document), f"a {document} line")


def write_lines(path: Path, lines: Iterable[Line]) -> None:
    """`lines` as the whole of `path`, 0600 (they hold signed URLs), replaced only once every line
    is written (formats/jsonl.py)."""
    write_models(path, lines)
