"""`output/build-report.json`: what a build found and what it cost, and where its lines are
(submit, retry, status and the commands after a build read it)."""

from __future__ import annotations

from pathlib import Path

import orjson
from pydantic import BaseModel, Field, ValidationError

from bulkimg.errors import InputFileError

BUILD_REPORT_FILE = "build-report.json"


class LinkCheck(BaseModel):
    """The one GET of a written URL (build-report.json's `link_check`)."""

    s3_key: str
    status: int  # 206 (or 200 from a server that ignores Range); 404/412: changed since listed
    seconds: float


class BuildReport(BaseModel):
    """output/build-report.json: what the build found and what it cost."""

    started_at: str
    groups: int
    groups_written: int
    groups_deferred: dict[str, str]
    groups_unchanged: int = 0
    variants: int
    rows_read: int
    row_problems: list[dict[str, str | int]]
    image_skus: int
    folders_needed: int
    list_strategy: str
    list_strategy_reason: str = ""
    prefixes_swept: int
    list_pages: int
    objects_listed: int
    s3_requests: dict[str, int]
    s3_http_attempts: int
    cache_hits: int
    images_probed: int
    probe_bytes: dict[str, int]
    images_accepted: int
    images_rejected: dict[str, int]
    variants_missing_images: dict[str, int]
    media_in_lines: int
    productset_files: list[str]
    plan_file: str
    missing_log: str
    preview_file: str
    thumbnail_gets: int
    # The bucket's region (HeadBucket; None: the server does not say) and the one signed for.
    bucket_region: str | None = None
    signing_region: str = ""
    links_expire_at: str = ""  # when the presigned URLs of this build stop working (UTC)
    links_expiry: str = ""  # the same, with what limits it (setting, credentials, SigV4)
    link_check: LinkCheck | None = None  # the one GET of a written URL (None: no URL written)
    # Fast-path (presigned) requests S3 refused in a way only boto3 gets past, by S3's code:
    # boto3 made them again.
    fast_path_fallbacks: dict[str, int] = {}
    wall_seconds: float
    seconds_per_image_sku: float
    warnings: list[str] = Field(default_factory=list)


def dump_build_report(report: BuildReport) -> bytes:
    return orjson.dumps(report.model_dump(mode="json"), option=orjson.OPT_INDENT_2) + b"\n"


def read_build_report(output_dir: Path) -> BuildReport:
    """The last build's report; InputFileError naming the command that makes a new one."""
    path = output_dir / BUILD_REPORT_FILE
    if not path.is_file():
        raise InputFileError(f"{path} not found: run `bulkimg build` first")
    try:
        return BuildReport.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        first = str(exc).splitlines()[0]
        message = f"{path} is not a build report ({first}): run `bulkimg build` again"
        raise InputFileError(message) from None
