"""`bulkimg preview`: output/preview.html drawn again from the files in the output folder (the
plan, manifest, failures and the last `plan --against-shop`), signing image URLs for the region
the build learnt."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bulkimg.config import Settings
from bulkimg.formats.plan import PLAN_FILE
from bulkimg.formats.resolution import CHECK_RESOLUTION
from bulkimg.outputs import output_set
from bulkimg.report.preview import (
    FAILURES_FILE,
    MANIFEST_FILE,
    PreviewOptions,
    PreviewResult,
    write_preview,
)
from bulkimg.run.ledger import signing_settings
from bulkimg.s3.client import make_s3_client

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def render_preview(settings: Settings, s3_client: S3Client | None = None) -> PreviewResult:
    """Re-render output/preview.html from the plan, manifest and failures in the output dir.

    Makes no S3 request unless `preview_thumbnails` is set (then one GET per new image).
    """
    out = settings.output_dir
    plan_path = out / PLAN_FILE
    signing = signing_settings(settings)  # the bucket's region, as the build learnt it
    client = s3_client or (make_s3_client(signing) if settings.aws_s3_bucket else None)
    with output_set() as outputs:
        result = write_preview(
            outputs,
            PreviewOptions.from_settings(settings),
            plan_path,
            client,
            manifest_path=out / MANIFEST_FILE,
            failures_path=out / FAILURES_FILE,
            shop_check_path=out / CHECK_RESOLUTION,
        )
        outputs.commit()
    return result
