"""Read a bulk operation's result JSONL back onto its input lines, and the product export.

Shopify runs lines in any order: a result is matched to its input by `__lineNumber` (0-based)
only. An input line with no result line did not run: it counts as failed and retryable; so does
one whose result line was cut short (the partial data of an operation that failed mid-line).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bulkimg.formats.failures import LineError
from bulkimg.formats.run import OperationRecord

# Our code for the lines of a file that stagedUploadsCreate refused (they were never sent).
STAGED_UPLOAD_REFUSED = "STAGED_UPLOAD_REFUSED"
# Top-level GraphQL error codes and userError codes that a later attempt can fix.
RETRYABLE_CODES = frozenset(
    {
        "THROTTLED",
        "INTERNAL_SERVER_ERROR",
        "TIMEOUT",
        "GENERIC_ERROR",
        "JOB_ERROR",
        "NON_READY_MEDIA",
        "NOT_RUN",
        "MEDIA_NOT_READY",
        "MEDIA_FAILED",
        STAGED_UPLOAD_REFUSED,
    }
)


@dataclass(slots=True)
class LineResult:
    """What one input line of a bulk mutation did."""

    line: int  # 0-based, as __lineNumber
    ran: bool = False  # the mutation answered the line (data.<field> is not null)
    product_id: str | None = None  # the product its payload names (the one productSet made)
    errors: list[LineError] = field(default_factory=list)  # top-level errors, userErrors

    @property
    def ok(self) -> bool:
        return self.ran and not self.errors

    @property
    def retryable(self) -> bool:
        return all(str(e.code) in RETRYABLE_CODES for e in self.errors)


def not_run(line: int, status: str | None) -> LineResult:
    message = f"line not run by the bulk operation (status {status or 'unknown'})"
    return LineResult(line, errors=[LineError(code="NOT_RUN", message=message)])


def read_line_results(op: OperationRecord, payload_field: str) -> dict[int, LineResult]:
    """Every input line of `op`, with its result (or a NOT_RUN failure)."""
    results: dict[int, LineResult] = {}
    for name in (op.partial_file, op.result_file):
        if name and Path(name).is_file():
            for record in _result_records(Path(name)):
                result = _line_result(record, payload_field)
                if result is not None:
                    results[result.line] = result
    for line in range(op.input_lines):
        if line not in results:
            results[line] = not_run(line, op.status)
    if op.rejected_errors:
        for line in range(op.input_lines):
            results[line] = LineResult(line, errors=list(op.rejected_errors))
    return results


def _result_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a result file. A last line cut short (no newline, not whole JSON) is left
    out, so its input line counts as not run; a damaged line before it is still an error."""
    with path.open("rb") as handle:
        held: bytes | None = None
        for raw in handle:
            if not raw.strip():
                continue
            if held is not None:
                yield orjson.loads(held)
            held = raw
    if held is not None:
        try:
            record = orjson.loads(held)
        except orjson.JSONDecodeError:
            if held.endswith(b"\n"):
                raise
            return
        yield record


def _line_result(record: dict[str, Any], payload_field: str) -> LineResult | None:
    number = record.get("__lineNumber")
    if not isinstance(number, int):
        return None
    errors = [LineError.of(e) for e in record.get("errors") or []]
    payload = (record.get("data") or {}).get(payload_field)
    if payload is None:
        return LineResult(number, errors=errors)
    # productReorderMedia reports in mediaUserErrors
    found = payload.get("userErrors") or payload.get("mediaUserErrors") or []
    errors.extend(LineError.of(e) for e in found)
    product = payload.get("product") or {}
    product_id = str(product["id"]) if product.get("id") else None
    return LineResult(number, ran=True, product_id=product_id, errors=errors)


# -- product export (bulk query) ---------------------------------------------------------------


@dataclass(slots=True)
class ExportedMedia:
    id: str
    alt: str
    status: str
    url: str | None
    errors: list[LineError] = field(default_factory=list)
    width: int | None = None
    height: int | None = None
    file_size: int | None = None  # bytes of the original file (MediaImage.originalSource)


@dataclass(slots=True)
class ExportedVariant:
    id: str
    sku: str
    media_ids: list[str] = field(default_factory=list)
    fields: str = ""  # every other exported field, as canonical JSON (for the canary)


@dataclass(slots=True)
class ExportedProduct:
    id: str
    handle: str
    media: list[ExportedMedia] = field(default_factory=list)
    variants: list[ExportedVariant] = field(default_factory=list)
    fields: str = ""  # every exported field but id, media and variants, as canonical JSON


_NOT_FIELDS = frozenset({"id", "__parentId", "media", "variants"})


def _fields(row: dict[str, Any]) -> str:
    kept = {k: v for k, v in row.items() if k not in _NOT_FIELDS}
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS).decode()


def read_export(path: Path) -> dict[str, ExportedProduct]:
    """Products by handle from a bulk query result. Rows are ungrouped: children are matched
    to parents by `__parentId`, in any order."""
    products: dict[str, ExportedProduct] = {}
    variants: dict[str, ExportedVariant] = {}
    orphans: list[dict[str, Any]] = []
    for row in _rows(path):
        gid = str(row.get("id", ""))
        if "/Product/" in gid:
            products[gid] = ExportedProduct(gid, str(row.get("handle", "")), fields=_fields(row))
        elif "/ProductVariant/" in gid:
            variants[gid] = ExportedVariant(gid, str(row.get("sku") or ""), fields=_fields(row))
            orphans.append(row)
        else:
            orphans.append(row)
    for row in orphans:
        _attach(row, products, variants)
    return {p.handle: p for p in products.values()}


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of an export's file, one at a time (blank lines skipped)."""
    with path.open("rb") as handle:
        for raw in handle:
            if raw.strip():
                yield orjson.loads(raw)


def _attach(
    row: dict[str, Any],
    products: dict[str, ExportedProduct],
    variants: dict[str, ExportedVariant],
) -> None:
    gid, parent = str(row.get("id", "")), str(row.get("__parentId", ""))
    if "/ProductVariant/" in gid:
        if parent in products:
            products[parent].variants.append(variants[gid])
    elif parent in variants:
        variants[parent].media_ids.append(gid)  # a variant's media
    elif parent in products:
        image = row.get("image") or {}
        source = row.get("originalSource") or {}
        products[parent].media.append(
            ExportedMedia(
                gid,
                str(row.get("alt") or ""),
                str(row.get("status") or ""),
                image.get("url") if isinstance(image, dict) else None,
                [LineError.of(e) for e in row.get("mediaErrors") or []],
                _int(image.get("width")) if isinstance(image, dict) else None,
                _int(image.get("height")) if isinstance(image, dict) else None,
                _int(source.get("fileSize")) if isinstance(source, dict) else None,
            )
        )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None
