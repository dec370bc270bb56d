"""`output/failures.jsonl`: one record per input line that failed (or planned line that could not
be sent), the exact variables of the line (signed URLs redacted) and whether a retry can fix it.
`bulkimg retry` reads it; the preview shows it (never its variables)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from bulkimg.formats.jsonl import read_models, write_models
from bulkimg.formats.lines import Line, LinePart
from bulkimg.redact import redact_url

FAILURES_FILE = "failures.jsonl"


class LineError(BaseModel):
    """An error of a line: Shopify's userError (code, field, message) or bulkimg's own."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    code: str | None = None
    field: list[str] | str | None = None
    message: str

    @classmethod
    def of(cls, raw: object) -> LineError:
        """An error as Shopify gives it: a userError (`code`, `field`, `message`), a top-level
        GraphQL error (its code under `extensions`), or anything else (its text)."""
        if not isinstance(raw, Mapping):
            return cls(message=str(raw))
        code = raw.get("code") or (raw.get("extensions") or {}).get("code")
        field = raw.get("field")
        if not (field is None or isinstance(field, str | list)):
            field = str(field)
        return cls(
            code=None if code is None else str(code),
            field=[str(f) for f in field] if isinstance(field, list) else field,
            message=str(raw.get("message", "")),
        )


class MediaFailure(LinePart):
    """What failed of an image that Shopify could not process or that is not READY yet."""

    product_id: str | None
    media_id: str
    s3_key: str = Field(alias="s3_key")  # bulkimg's name, not Shopify's


class VariantImageMissing(LinePart):
    """A variant whose primary image could not be attached (it or the image is not there)."""

    product_id: str | None
    sku: str
    s3_key: str = Field(alias="s3_key")  # bulkimg's name, not Shopify's
    variant_id: str | None


# A failure's variables: the exact line that failed (formats/lines.py), or, for an image or a
# variant image found wrong in the export, what was wrong (no line of its own).
FailureVariables = Line | MediaFailure | VariantImageMissing


class FailureRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    phase: str  # build, product_set, variant_detach, variant_media, reorder, canary
    group_id: str
    handle: str = ""
    file: str | None = None
    line: int | None = None  # 1-based line of `file`
    variables: FailureVariables | None = None
    errors: list[LineError] = []
    retryable: bool

    @field_validator("variables", mode="wrap")
    @classmethod
    def _known_shape(cls, value: object, handler: ValidatorFunctionWrapHandler) -> object:
        """Variables of a shape this version does not write (an older bulkimg's file) are read
        as none: they only describe the failure, and retry must still read the file."""
        try:
            return handler(value)
        except ValidationError:
            return None

    @property
    def s3_key(self) -> str | None:
        """The S3 key of the image a variant_media failure is about (None for a line's)."""
        variables = self.variables
        return (
            variables.s3_key if isinstance(variables, MediaFailure | VariantImageMissing) else None
        )


def failure_of(
    phase: str,
    group_id: str,
    handle: str,
    file: str | None,
    line: int | None,
    variables: FailureVariables | None,
    errors: Iterable[LineError],
    retryable: bool,
) -> FailureRecord:
    """A failure record; error messages that quote a presigned URL (an image Shopify could not
    fetch) have the signature redacted."""
    return FailureRecord(
        phase=phase,
        group_id=group_id,
        handle=handle,
        file=file,
        line=line,
        variables=variables,
        errors=[e.model_copy(update={"message": redact_url(e.message)}) for e in errors],
        retryable=retryable,
    )


def read_failures(path: Path) -> list[FailureRecord]:
    """The failures at `path` ([] when there is none)."""
    return list(read_models(path, FailureRecord, "a failure record")) if path.is_file() else []


def write_failures(path: Path, records: Iterable[FailureRecord]) -> None:
    write_models(path, records)
