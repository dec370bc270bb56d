"""What the S3 layer reads of the settings: one small typed object, unpacked once.

The listing, the header reads and the link check take `S3Options` rather than the whole
`Settings`; the client factories (`s3/client.py`) keep `Settings`, which carries the credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bulkimg.config import Settings


@dataclass(frozen=True, slots=True)
class S3Options:
    """One bucket's listing and header reads (settings: AWS_S3_BUCKET, BULKIMG_S3_*, ...)."""

    bucket: str
    prefix: str
    endpoint: str | None  # AWS_ENDPOINT_URL_S3; None: AWS
    list_strategy: Literal["auto", "folders", "sweep"]
    workers: int
    max_attempts: int
    get_client: Literal["direct", "httpx", "boto3"]
    probe_initial_bytes: int
    probe_max_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Options:
        """The options of `settings`; ConfigError when AWS_S3_BUCKET is not set."""
        settings.require("aws_s3_bucket")
        return cls(
            bucket=settings.aws_s3_bucket or "",
            prefix=settings.s3_prefix,
            endpoint=settings.aws_endpoint_url_s3,
            list_strategy=settings.s3_list_strategy,
            workers=settings.s3_workers,
            max_attempts=settings.s3_max_attempts,
            get_client=settings.s3_get_client,
            probe_initial_bytes=settings.probe_initial_bytes,
            probe_max_bytes=settings.probe_max_bytes,
        )
