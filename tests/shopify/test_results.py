"""Unit tests of shopify/results.py: a bulk operation's result JSONL read back onto its input
lines, and
the product export (a bulk query's flat, ungrouped rows) re-assembled by `__parentId`.

Result files are written by hand in tmp_path; no shop, no download.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from bulkimg.formats.failures import LineError
from bulkimg.formats.run import OperationRecord, Phase
from bulkimg.shopify.results import (
    RETRYABLE_CODES,
    STAGED_UPLOAD_REFUSED,
    LineResult,
    read_export,
    read_line_results,
)

PRODUCT = "gid://shopify/Product/{}"
VARIANT = "gid://shopify/ProductVariant/{}"
MEDIA = "gid://shopify/MediaImage/{}"


def write_jsonl(path: Path, rows: list[Any], tail: bytes = b"") -> str:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows) + tail)
    return str(path)


def operation(lines: int, status: str | None = "COMPLETED", **files: Any) -> OperationRecord:
    return OperationRecord(phase=Phase.PRODUCT_SET, input_file="productset.jsonl",
                           input_sha256="0" * 64, input_lines=lines, document="product_set",
                           status=status, **files)  # fmt: skip


def done(line: int, product_id: str = "1", user_errors: list[Any] | None = None) -> dict[str, Any]:
    payload = {"product": {"id": PRODUCT.format(product_id)}, "userErrors": user_errors or []}
    return {"data": {"productSet": payload}, "__lineNumber": line}


# -- result lines -> input lines -----------------------------------------------------------------


def test_results_are_matched_to_input_lines_by_line_number_in_any_order(tmp_path: Path) -> None:
    result = write_jsonl(tmp_path / "r.jsonl", [done(2, "c"), done(0, "a"), done(1, "b")])

    results = read_line_results(operation(3, result_file=result), "productSet")

    assert sorted(results) == [0, 1, 2]
    assert {n: r.product_id for n, r in results.items()} == {
        0: PRODUCT.format("a"),
        1: PRODUCT.format("b"),
        2: PRODUCT.format("c"),
    }
    assert all(r.ok and r.line == n for n, r in results.items())


def test_an_input_line_with_no_result_did_not_run_and_is_retryable(tmp_path: Path) -> None:
    result = write_jsonl(tmp_path / "r.jsonl", [done(0)])

    results = read_line_results(operation(3, "FAILED", result_file=result), "productSet")

    assert results[0].ok
    for line in (1, 2):
        assert (results[line].ok, results[line].retryable, results[line].ran) == (
            False,
            True,
            False,
        )
        assert [e.model_dump() for e in results[line].errors] == [
            {
                "code": "NOT_RUN",
                "field": None,
                "message": "line not run by the bulk operation (status FAILED)",
            }
        ]


def test_with_no_result_file_every_line_is_not_run_with_an_unknown_status() -> None:
    results = read_line_results(operation(2, status=None), "productSet")

    assert [r.errors[0].code for r in results.values()] == ["NOT_RUN", "NOT_RUN"]
    assert "(status unknown)" in results[0].errors[0].message


def test_a_named_result_file_that_is_gone_counts_its_lines_as_not_run(tmp_path: Path) -> None:
    op = operation(1, result_file=str(tmp_path / "expired.jsonl"))

    assert read_line_results(op, "productSet")[0].errors[0].code == "NOT_RUN"


def test_user_errors_of_a_line_fail_it_with_code_field_and_message(tmp_path: Path) -> None:
    error = {"field": ["input", "files", "0"], "message": "Image is too big", "code": "INVALID"}
    result = write_jsonl(tmp_path / "r.jsonl", [done(0, user_errors=[error])])

    (line,) = read_line_results(operation(1, result_file=result), "productSet").values()

    assert line.ran and line.product_id == PRODUCT.format("1")
    assert (line.ok, line.retryable) == (False, False)
    assert [e.model_dump() for e in line.errors] == [
        {"code": "INVALID", "field": ["input", "files", "0"], "message": "Image is too big"}
    ]


def test_top_level_errors_take_their_code_from_extensions(tmp_path: Path) -> None:
    row = {
        "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
        "__lineNumber": 0,
    }
    result = write_jsonl(tmp_path / "r.jsonl", [row])

    (line,) = read_line_results(operation(1, result_file=result), "productSet").values()

    assert not line.ran and line.product_id is None
    assert [e.model_dump() for e in line.errors] == [
        {"code": "THROTTLED", "field": None, "message": "Throttled"}
    ]
    assert (line.ok, line.retryable) == (False, True)


def test_an_error_that_is_not_an_object_is_kept_as_its_text(tmp_path: Path) -> None:
    result = write_jsonl(tmp_path / "r.jsonl", [{"errors": ["boom"], "__lineNumber": 0}])

    (line,) = read_line_results(operation(1, result_file=result), "productSet").values()

    assert [e.model_dump() for e in line.errors] == [
        {"code": None, "field": None, "message": "boom"}
    ]
    assert line.retryable is False


def test_media_user_errors_of_a_reorder_fail_its_line(tmp_path: Path) -> None:
    error = {"field": ["moves"], "message": "Media not ready", "code": "MEDIA_NOT_READY"}
    payload = {"job": None, "mediaUserErrors": [error]}
    row = {"data": {"productReorderMedia": payload}, "__lineNumber": 0}
    result = write_jsonl(tmp_path / "r.jsonl", [row])

    (line,) = read_line_results(operation(1, result_file=result), "productReorderMedia").values()

    assert [e.model_dump() for e in line.errors] == [{"code": "MEDIA_NOT_READY", "field": ["moves"],
                            "message": "Media not ready"}]  # fmt: skip
    assert (line.ok, line.retryable) == (False, True)


@pytest.mark.parametrize(
    ("codes", "retryable"),
    [
        (["THROTTLED", "MEDIA_NOT_READY"], True),
        (["THROTTLED", "INVALID"], False),
        ([None], False),
        ([], True),
    ],
)
def test_a_line_is_retryable_only_when_every_error_is(
    codes: list[str | None], retryable: bool
) -> None:
    line = LineResult(0, errors=[LineError(code=c, message="") for c in codes])

    assert line.retryable is retryable


def test_a_staged_upload_refusal_is_retryable() -> None:
    assert STAGED_UPLOAD_REFUSED in RETRYABLE_CODES


def test_rows_without_a_line_number_are_not_results(tmp_path: Path) -> None:
    rows = [{"data": {"productSet": {"userErrors": []}}}, {"__lineNumber": "0"}, done(1)]
    result = write_jsonl(tmp_path / "r.jsonl", rows)

    results = read_line_results(operation(2, result_file=result), "productSet")

    assert results[0].errors[0].code == "NOT_RUN"
    assert results[1].ok


def test_partial_data_and_results_are_both_read_results_last(tmp_path: Path) -> None:
    partial = write_jsonl(tmp_path / "p.jsonl", [done(0, "early"), done(1, "partial")])
    result = write_jsonl(tmp_path / "r.jsonl", [done(0, "final")])

    results = read_line_results(
        operation(3, "FAILED", partial_file=partial, result_file=result), "productSet"
    )

    assert (results[0].ran, results[0].product_id) == (True, PRODUCT.format("final"))
    assert results[1].ok
    assert results[2].errors[0].code == "NOT_RUN"


def test_a_last_line_cut_short_counts_as_not_run_and_the_others_are_kept(tmp_path: Path) -> None:
    # The partial data of an operation that failed while writing a line ends mid-line.
    torn = orjson.dumps(done(2))[:25]
    partial = write_jsonl(tmp_path / "p.jsonl", [done(0), done(1)], tail=torn)

    results = read_line_results(operation(3, "FAILED", partial_file=partial), "productSet")

    assert [results[n].ok for n in (0, 1)] == [True, True]
    assert results[2].errors[0].code == "NOT_RUN"
    assert results[2].retryable


def test_a_damaged_line_that_is_not_the_last_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b'{"__lineNumber": 0, "da\n' + orjson.dumps(done(1)) + b"\n")

    with pytest.raises(orjson.JSONDecodeError):
        read_line_results(operation(2, result_file=str(path)), "productSet")


def test_a_whole_last_line_that_is_not_json_is_still_an_error(tmp_path: Path) -> None:
    # Only a line cut short (no newline at its end) is taken for an unfinished write.
    path = tmp_path / "r.jsonl"
    path.write_bytes(orjson.dumps(done(0)) + b"\n" + b'{"__lineNumber": 1, "da\n')

    with pytest.raises(orjson.JSONDecodeError):
        read_line_results(operation(2, result_file=str(path)), "productSet")


def test_blank_lines_in_a_result_file_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(b"\n" + orjson.dumps(done(0)) + b"\n\n  \n")

    assert read_line_results(operation(1, result_file=str(path)), "productSet")[0].ok


def test_a_rejected_operation_fails_every_line_with_its_errors(tmp_path: Path) -> None:
    refused = {"code": STAGED_UPLOAD_REFUSED, "field": None, "message": "no target"}
    result = write_jsonl(tmp_path / "r.jsonl", [done(0)])
    op = operation(2, "FAILED", result_file=result, rejected_errors=[refused])

    results = read_line_results(op, "productSet")

    assert [r.errors for r in results.values()] == [[LineError(**refused)], [LineError(**refused)]]
    assert all(r.retryable and not r.ok for r in results.values())


# -- the product export: ungrouped rows, children by __parentId -----------------------------------


def product_row(n: str, handle: str, **fields: Any) -> dict[str, Any]:
    return {"id": PRODUCT.format(n), "handle": handle, **fields}


def media_row(n: str, parent: str, **fields: Any) -> dict[str, Any]:
    row = {"id": MEDIA.format(n), "alt": f"alt {n}", "status": "READY",
           "mediaContentType": "IMAGE", "mediaErrors": [], "__parentId": parent}  # fmt: skip
    row["image"] = {"url": f"https://cdn.shopify.com/s/files/{n}.jpg", "width": 800, "height": 600}
    row["originalSource"] = {"fileSize": 1234}
    return row | fields


def variant_row(n: str, parent: str, sku: str | None, **fields: Any) -> dict[str, Any]:
    return {"id": VARIANT.format(n), "sku": sku, "__parentId": parent, **fields}


def test_children_are_matched_to_parents_by_parent_id_in_any_order(tmp_path: Path) -> None:
    p1, p2 = PRODUCT.format(1), PRODUCT.format(2)
    rows = [
        {"id": MEDIA.format(12), "__parentId": VARIANT.format(21)},  # a variant's media, first
        variant_row("21", p2, "SKU-21"),
        media_row("11", p1),
        product_row("2", "ring"),
        media_row("13", p2),
        product_row("1", "necklace"),
        variant_row("22", p2, "SKU-22"),
        media_row("14", p1),
    ]
    path = tmp_path / "export.jsonl"
    write_jsonl(path, rows)

    products = read_export(path)

    assert sorted(products) == ["necklace", "ring"]
    assert [m.id for m in products["necklace"].media] == [MEDIA.format(11), MEDIA.format(14)]
    assert products["necklace"].variants == []
    ring = products["ring"]
    assert ring.id == p2
    assert [m.id for m in ring.media] == [MEDIA.format(13)]
    assert [(v.id, v.sku, v.media_ids) for v in ring.variants] == [
        (VARIANT.format(21), "SKU-21", [MEDIA.format(12)]),
        (VARIANT.format(22), "SKU-22", []),
    ]


def test_a_media_row_carries_status_url_size_and_errors(tmp_path: Path) -> None:
    errors = [{"code": "IMAGE_DOWNLOAD_FAILURE", "message": "403"}]
    failed = media_row(
        "2", PRODUCT.format(1), status="FAILED", image=None, originalSource=None, mediaErrors=errors
    )
    path = tmp_path / "export.jsonl"
    write_jsonl(path, [product_row("1", "ring"), media_row("1", PRODUCT.format(1)), failed])

    ready, broken = read_export(path)["ring"].media

    assert (ready.alt, ready.status, ready.url) == (
        "alt 1",
        "READY",
        "https://cdn.shopify.com/s/files/1.jpg",
    )
    assert (ready.width, ready.height, ready.file_size, ready.errors) == (800, 600, 1234, [])
    assert (broken.status, broken.url, broken.width, broken.file_size) == (
        "FAILED",
        None,
        None,
        None,
    )
    assert [e.model_dump() for e in broken.errors] == [
        {"code": "IMAGE_DOWNLOAD_FAILURE", "field": None, "message": "403"}
    ]


def test_a_variant_without_sku_reads_as_an_empty_sku(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    write_jsonl(path, [product_row("1", "ring"), variant_row("1", PRODUCT.format(1), None)])

    assert [v.sku for v in read_export(path)["ring"].variants] == [""]


def test_rows_whose_parent_is_not_exported_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    rows = [
        product_row("1", "ring"),
        media_row("1", PRODUCT.format(99)),
        variant_row("1", PRODUCT.format(99), "X"),
        {"id": MEDIA.format(2), "__parentId": VARIANT.format(98)},
    ]
    write_jsonl(path, rows)

    ring = read_export(path)["ring"]

    assert (ring.media, ring.variants) == ([], [])


def test_every_other_field_is_kept_as_canonical_json_for_the_canary(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    product = product_row("1", "ring", title="Ring", status="ACTIVE", tags=["b", "a"])
    variant = variant_row("1", PRODUCT.format(1), "S1", price="10.00", barcode=None)
    write_jsonl(path, [variant, product])

    ring = read_export(path)["ring"]

    assert ring.fields == '{"handle":"ring","status":"ACTIVE","tags":["b","a"],"title":"Ring"}'
    assert ring.variants[0].fields == '{"barcode":null,"price":"10.00","sku":"S1"}'
