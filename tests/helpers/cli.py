"""The `bulkimg` command run as a user runs it (a subprocess), and its environment for a local S3
and catalog."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bulkimg.demo.run import LocalS3
from tests.helpers.env import CANARY_KEY_ID, CANARY_SECRET, CANARY_TOKEN


def bulkimg(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BULKIMG_"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bulkimg", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def env_for(server: LocalS3, bucket: str, catalog: Path) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL_S3": server.endpoint_url,
        "AWS_S3_BUCKET": bucket,
        "AWS_ACCESS_KEY_ID": CANARY_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": CANARY_SECRET,
        "AWS_SESSION_TOKEN": CANARY_TOKEN,
        "BULKIMG_CATALOG": str(catalog),
    }
