"""formats/lines.py: the lines of bulkimg's bulk mutations as models, their exact bytes, and
their round trip through the one writer and reader."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import orjson
import pytest

from bulkimg.errors import InputFileError
from bulkimg.formats.failures import (
    FailureRecord,
    LineError,
    MediaFailure,
    VariantImageMissing,
    failure_of,
    read_failures,
)
from bulkimg.formats.jsonl import dump_model
from bulkimg.formats.lines import (
    FILE_DELETE,
    LINE_MODELS,
    PRODUCT_REORDER_MEDIA,
    PRODUCT_SET,
    PRODUCT_UPDATE_MEDIA,
    VARIANT_APPEND_MEDIA,
    VARIANT_DETACH_MEDIA,
    CreateMediaInput,
    FileDeleteLine,
    FileSetInput,
    Line,
    MoveInput,
    OptionValue,
    ProductOption,
    ProductRef,
    ProductSetIdentifier,
    ProductSetLine,
    ProductSetProduct,
    ProductSetVariant,
    ProductUpdateMediaLine,
    ReorderMediaLine,
    VariantMediaLine,
    VariantMediaPair,
    VariantOptionValue,
    dump_line,
    line_model,
    parse_line,
    read_lines,
    write_lines,
)
from bulkimg.shopify.documents import document_names, load_document, validate_operation

URL = "https://bucket.s3.amazonaws.com/a/1-1a-1.jpg?X-Amz-Signature=abc"


def product_set(files: list[FileSetInput] | None) -> ProductSetLine:
    return ProductSetLine(
        identifier=ProductSetIdentifier(handle="lgd-1"),
        input=ProductSetProduct(
            handle="lgd-1",
            title="Ring",
            product_options=[ProductOption(name="SKU", values=[OptionValue(name="A1")])],
            variants=[
                ProductSetVariant(
                    sku="A1", option_values=[VariantOptionValue(option_name="SKU", name="A1")]
                )
            ],
            files=files,
        ),
    )


WITH_FILES = (
    b'{"identifier":{"handle":"lgd-1"},"input":{"handle":"lgd-1","title":"Ring",'
    b'"productOptions":[{"name":"SKU","values":[{"name":"A1"}]}],'
    b'"variants":[{"sku":"A1","optionValues":[{"optionName":"SKU","name":"A1"}]}],'
    b'"files":[{"originalSource":"' + URL.encode() + b'","alt":"1 - Image 1",'
    b'"contentType":"IMAGE","filename":"1-1a-1--e1.jpg"}]}}\n'
)
WITHOUT_FILES = (
    b'{"identifier":{"handle":"lgd-1"},"input":{"handle":"lgd-1","title":"Ring",'
    b'"productOptions":[{"name":"SKU","values":[{"name":"A1"}]}],'
    b'"variants":[{"sku":"A1","optionValues":[{"optionName":"SKU","name":"A1"}]}]}}\n'
)
ONE_FILE = [FileSetInput(original_source=URL, alt="1 - Image 1", filename="1-1a-1--e1.jpg")]


def samples() -> dict[str, Line]:
    """One line of every document run in bulk."""
    return {
        PRODUCT_SET: product_set(ONE_FILE),
        PRODUCT_UPDATE_MEDIA: ProductUpdateMediaLine(
            product=ProductRef(id="gid://shopify/Product/1"),
            media=[CreateMediaInput(original_source=URL, alt="1 - Image 1")],
        ),
        FILE_DELETE: FileDeleteLine(file_ids=["gid://shopify/MediaImage/2"]),
        VARIANT_APPEND_MEDIA: VariantMediaLine(
            product_id="gid://shopify/Product/1",
            variant_media=[
                VariantMediaPair(
                    variant_id="gid://shopify/ProductVariant/3",
                    media_ids=["gid://shopify/MediaImage/2"],
                )
            ],
        ),
        VARIANT_DETACH_MEDIA: VariantMediaLine(
            product_id="gid://shopify/Product/1",
            variant_media=[
                VariantMediaPair(
                    variant_id="gid://shopify/ProductVariant/3",
                    media_ids=["gid://shopify/MediaImage/2"],
                )
            ],
        ),
        PRODUCT_REORDER_MEDIA: ReorderMediaLine(
            id="gid://shopify/Product/1",
            moves=[MoveInput(id="gid://shopify/MediaImage/2", new_position="0")],
        ),
    }


def test_a_productset_line_with_files_is_written_exactly() -> None:
    assert dump_line(product_set(ONE_FILE)) == WITH_FILES


def test_a_productset_line_without_files_leaves_the_key_out_not_null() -> None:
    # `"files": null` is not valid and `[]` would wipe the product's media.
    assert dump_line(product_set(None)) == WITHOUT_FILES


def test_a_create_line_leaves_the_identifier_out_and_sends_its_status_last() -> None:
    line = product_set(ONE_FILE)
    create = ProductSetLine(input=line.input.model_copy(update={"status": "DRAFT"}))
    assert dump_line(create) == (
        b'{"input":{"handle":"lgd-1","title":"Ring",'
        b'"productOptions":[{"name":"SKU","values":[{"name":"A1"}]}],'
        b'"variants":[{"sku":"A1","optionValues":[{"optionName":"SKU","name":"A1"}]}],'
        b'"files":[{"originalSource":"' + URL.encode() + b'","alt":"1 - Image 1",'
        b'"contentType":"IMAGE","filename":"1-1a-1--e1.jpg"}],"status":"DRAFT"}}\n'
    )


def test_a_missing_alt_text_is_written_as_null() -> None:
    media = CreateMediaInput(original_source=URL, alt=None)
    assert dump_line(ProductUpdateMediaLine(product=ProductRef(id="p"), media=[media])) == (
        b'{"product":{"id":"p"},"media":[{"originalSource":"' + URL.encode() + b'",'
        b'"alt":null,"mediaContentType":"IMAGE"}]}\n'
    )


@pytest.mark.parametrize("raw", [WITH_FILES, WITHOUT_FILES], ids=["with-files", "without-files"])
def test_a_productset_line_round_trips_byte_for_byte(raw: bytes) -> None:
    line = parse_line(PRODUCT_SET, raw)
    assert isinstance(line, ProductSetLine)
    assert dump_line(line) == raw


@pytest.mark.parametrize("document", sorted(LINE_MODELS))
def test_every_line_round_trips_through_the_writer_and_reader(
    document: str, tmp_path: Path
) -> None:
    line = samples()[document]
    path = tmp_path / "lines" / f"{document}.jsonl"
    write_lines(path, [line, line])
    assert list(read_lines(path, document)) == [line, line]
    assert path.read_bytes() == dump_line(line) * 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # they hold signed URLs
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_a_writer_that_fails_midway_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "productset.jsonl"

    def lines() -> Any:
        yield product_set(None)
        raise RuntimeError("signing failed")

    with pytest.raises(RuntimeError):
        write_lines(path, lines())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("document", sorted(LINE_MODELS))
def test_every_line_validates_against_its_document(document: str, admin_schemas: list[Any]) -> None:
    assert document in document_names()
    for schema in admin_schemas:
        variables = orjson_of(samples()[document])
        assert validate_operation(schema, load_document(document), variables) == []


def orjson_of(line: Line) -> Any:
    import orjson

    return orjson.loads(dump_line(line))


def test_a_line_with_a_field_the_model_does_not_know_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "append.jsonl"
    path.write_bytes(b'{"product":{"id":"p","title":"x"},"media":[]}\n')
    with pytest.raises(InputFileError, match=r"append\.jsonl:1: not a product_update_media line"):
        list(read_lines(path, PRODUCT_UPDATE_MEDIA))


def test_a_document_not_run_in_bulk_has_no_line_model() -> None:
    with pytest.raises(LookupError, match="staged_uploads_create"):
        line_model("staged_uploads_create")


@pytest.mark.parametrize(
    "variables",
    [
        *samples().values(),
        ProductSetLine(input=product_set(ONE_FILE).input.model_copy(update={"status": "DRAFT"})),
        MediaFailure(product_id=None, media_id="gid://shopify/MediaImage/2", s3_key="a/1.jpg"),
        VariantImageMissing(product_id="p", sku="A1", s3_key="a/1.jpg", variant_id=None),
        None,
    ],
)
def test_a_failure_record_reads_back_the_same_variables_and_bytes(variables: Any) -> None:
    record = failure_of("variant_media", "LGD-1", "lgd-1", None, None, variables,
                        [LineError(code="X", message="m")], True)  # fmt: skip
    raw = dump_model(record)
    again = FailureRecord.model_validate_json(raw)
    assert again == record and type(again.variables) is type(variables)
    assert dump_model(again) == raw


def test_a_failure_about_an_image_keeps_bulkimgs_names() -> None:
    what = VariantImageMissing(product_id=None, sku="A1", s3_key="a/1.jpg", variant_id=None)
    record = failure_of("variant_media", "LGD-1", "lgd-1", None, None, what, [], True)
    assert b'"variables":{"productId":null,"sku":"A1","s3_key":"a/1.jpg","variantId":null}' in (
        dump_model(record)
    )
    assert record.s3_key == "a/1.jpg"


@pytest.mark.parametrize("variables", [{}, {"input": {"handle": "x"}}, {"mediaId": 3}])
def test_failures_an_older_bulkimg_wrote_are_still_read(tmp_path: Path, variables: Any) -> None:
    # Retry must read a failures.jsonl left by another version: unknown variables read as none.
    path = tmp_path / "failures.jsonl"
    path.write_bytes(
        orjson.dumps({"phase": "product_set", "group_id": "G", "variables": variables,
                      "errors": [], "retryable": True}) + b"\n"
    )  # fmt: skip
    (record,) = read_failures(path)
    assert (record.group_id, record.variables, record.retryable) == ("G", None, True)
