"""`bulkimg demo`: a local S3 (moto's server on 127.0.0.1) filled with a sample catalog, then build.

Needs no credentials and no network. moto is an optional dependency (`pip install bulkimg[demo]`).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from bulkimg.errors import ConfigError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

DEMO_BUCKET = "bulkimg-demo-media"
# moto accepts any credentials; these are not secrets and reach no real AWS account.
DEMO_KEY_ID = "demo-access-key"
DEMO_SECRET = "demo-secret-key"  # noqa: S105


@dataclass(frozen=True, slots=True)
class LocalS3:
    """A running moto server."""

    endpoint_url: str
    region: str = "us-east-1"

    def client(self) -> S3Client:
        client: S3Client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=DEMO_KEY_ID,
            aws_secret_access_key=DEMO_SECRET,
        )
        return client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def local_s3(port: int | None = None) -> Iterator[LocalS3]:
    """moto's S3 server on 127.0.0.1 for the duration of the block."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        raise ConfigError("the demo needs moto's server: pip install 'bulkimg[demo]'") from None
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    port = port or free_port()
    server: Any = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield LocalS3(f"http://127.0.0.1:{port}")
    finally:
        server.stop()


def demo_settings(s3: LocalS3, catalog: Path, workdir: Path) -> dict[str, object]:
    """The settings a demo build runs with (they override environment and bulkimg.toml)."""
    return {
        "catalog": str(catalog),
        "aws_s3_bucket": DEMO_BUCKET,
        "aws_endpoint_url_s3": s3.endpoint_url,
        "aws_access_key_id": DEMO_KEY_ID,
        "aws_secret_access_key": DEMO_SECRET,
        "aws_session_token": "",
        "aws_region": s3.region,
        "cache_dir": workdir / "cache",
    }
