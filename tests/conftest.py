"""Shared fixtures: isolated settings, moto S3 (in-process and as a loopback server), MariaDB."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from bulkimg.config import Settings, load_settings
from bulkimg.demo import LocalS3, local_s3
from bulkimg.samples import SampleData, demo_data

BUCKET = "test-media"
IN_CI = os.environ.get("CI") == "true"
# Canary credentials: tests assert they never appear in any output, log or message.
CANARY_KEY_ID = "AKIACANARY0000KEYID"
CANARY_SECRET = "canary/secret/DO-NOT-LEAK-0123456789"
CANARY_TOKEN = "canary-session-token-DO-NOT-LEAK"


def skip_or_fail(reason: str) -> None:
    """Skip with a reason; under CI=true a missing prerequisite is a failure."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting leaks in from the developer's environment, .env or bulkimg.toml."""
    keep = {"BULKIMG_TEST_MYSQL_URL", "BULKIMG_SHARED_DIR"}
    for name in list(os.environ):
        ours = name.startswith(("BULKIMG_", "AWS_", "SHOPIFY_")) or name == "MYSQL_PASSWORD"
        if ours and name not in keep:
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def make_settings(tmp_path: Path) -> Any:
    """Settings for a run in tmp_path with canary credentials; keyword arguments override."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "aws_s3_bucket": BUCKET,
            "aws_access_key_id": CANARY_KEY_ID,
            "aws_secret_access_key": CANARY_SECRET,
            "aws_session_token": CANARY_TOKEN,
            "aws_region": "us-east-1",
            "output_dir": tmp_path / "output",
            "logs_dir": tmp_path / "logs",
            "cache_dir": tmp_path / "cache",
            "s3_workers": 4,
        }
        values.update(overrides)
        return load_settings(values, env_file=None)

    return make


@pytest.fixture
def s3() -> Iterator[Any]:
    """moto's in-process S3 with an empty bucket."""
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture(scope="session")
def sample() -> SampleData:
    """The demo's sample catalog and images (made once; do not modify)."""
    return demo_data()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LocalS3]:
    """moto's S3 server on 127.0.0.1 (real HTTP over loopback)."""
    with local_s3() as server:
        yield server


@pytest.fixture
def mysql_url() -> str:
    url = os.environ.get("BULKIMG_TEST_MYSQL_URL")
    if not url:
        skip_or_fail("BULKIMG_TEST_MYSQL_URL is not set (see DEVELOPERS.md)")
    assert url
    return url


def shared_dir() -> Path:
    default = Path(__file__).resolve().parents[2] / "shared"
    return Path(os.environ.get("BULKIMG_SHARED_DIR", default))


def secrets_in(paths: list[Path], text: str = "") -> list[str]:
    """Which canary secrets appear in the files under `paths` (recursively) or in `text`."""
    canaries = (CANARY_SECRET, CANARY_TOKEN, "canary%2Fsecret", "canary-session-token")
    found = [c for c in canaries if c in text]
    for root in paths:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for file in files:
            data = file.read_bytes()
            found.extend(f"{c} in {file}" for c in canaries if c.encode() in data)
    return found
