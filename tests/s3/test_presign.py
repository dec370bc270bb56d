"""bulkimg.s3.presign: our presigned GET URLs are botocore's, byte for byte, and they fetch."""

from __future__ import annotations

import functools
import urllib.request
from datetime import datetime, timedelta
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import NoCredentialsError, ParamValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkimg.config import load_settings
from bulkimg.demo.run import LocalS3
from bulkimg.s3.client import make_s3_client
from bulkimg.s3.presign import FastPresigner, botocore_presigner, presigner
from tests.helpers.env import CANARY_KEY_ID, CANARY_SECRET, CANARY_TOKEN

ENDPOINTS = (None, "http://127.0.0.1:9000", "https://minio.example.com:9443", "http://[::1]:9000")
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2", "us-gov-west-1")
BUCKETS = ("test-media", "media.example.com", "ab")  # virtual host, dotted, too short for DNS
TOKENS = (None, CANARY_TOKEN, "FwoGZXIvYXdzE+/==" * 60)  # none, short, STS-sized (~1 KB)


@functools.cache
def bulkimg_client(endpoint: str | None, region: str, token: str | None) -> Any:
    """The client `make_s3_client` makes for these settings (made once per combination)."""
    values = {
        "aws_access_key_id": CANARY_KEY_ID,
        "aws_secret_access_key": CANARY_SECRET,
        "aws_session_token": token,
        "aws_region": region,
        "aws_endpoint_url_s3": endpoint,
    }
    return make_s3_client(load_settings(values, env_file=None))


def botocore_url(client: Any, bucket: str, key: str, expires: int, at: datetime) -> str:
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        url: str = botocore_presigner(client, bucket, expires)(key)
    return url


NASTY = st.sampled_from([" ", "+", "%", "~", "/", "//", "?", "#", "&", "=", "é", "\u4e2d", "😀"])
KEYS = st.one_of(
    st.text(min_size=1, max_size=300),
    st.lists(st.one_of(NASTY, st.text(max_size=5)), min_size=1, max_size=40).map("".join),
    st.text(alphabet="ab/+% ~é", min_size=900, max_size=1024),
).filter(bool)
TIMES = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2040, 1, 1))


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=KEYS,
    endpoint=st.sampled_from(ENDPOINTS),
    region=st.sampled_from(REGIONS),
    token=st.sampled_from(TOKENS),
    bucket=st.sampled_from(BUCKETS),
    expires=st.integers(min_value=1, max_value=604_800),
    at=TIMES,
)
def test_url_is_botocores_byte_for_byte(
    key: str, endpoint: str | None, region: str, token: str | None, bucket: str, expires: int,
    at: datetime,
) -> None:  # fmt: skip
    client = bulkimg_client(endpoint, region, token)
    fast = presigner(client, bucket, expires, clock=lambda: at)
    assert isinstance(fast, FastPresigner)
    assert fast(key) == botocore_url(client, bucket, key, expires, at)


def test_a_new_utc_day_gets_its_own_signing_key() -> None:
    client = bulkimg_client(None, "eu-west-1", CANARY_TOKEN)
    now = [datetime(2026, 12, 1, 23, 59, 59)]
    fast = presigner(client, "test-media", 3600, clock=lambda: now[0])
    for _ in range(2):
        assert fast("a/b.jpg") == botocore_url(client, "test-media", "a/b.jpg", 3600, now[0])
        now[0] += timedelta(seconds=1)


def test_credentials_are_read_once_when_the_presigner_is_made() -> None:
    client = bulkimg_client("http://127.0.0.1:9000", "us-east-1", None)
    credentials = client._request_signer._credentials
    with mock.patch.object(
        type(credentials), "get_frozen_credentials", wraps=credentials.get_frozen_credentials
    ) as frozen:
        fast = presigner(client, "test-media", 60)
        reads = frozen.call_count
        for n in range(50):
            fast(f"k{n}")
    assert frozen.call_count == reads


def test_no_secret_in_the_presigners_reprs() -> None:
    fast = presigner(bulkimg_client(None, "us-east-1", CANARY_TOKEN), "test-media", 60)
    assert isinstance(fast, FastPresigner)
    fast("a.jpg")
    text = repr(fast) + str(fast) + repr([getattr(fast, a) for a in FastPresigner.__slots__])
    assert CANARY_SECRET not in text and CANARY_TOKEN not in text


def test_an_empty_key_is_refused_as_botocore_refuses_it() -> None:
    fast = presigner(bulkimg_client(None, "us-east-1", None), "test-media", 60)
    with pytest.raises(ParamValidationError):
        fast("")


def test_without_credentials_each_url_raises_no_credentials_as_botocore_does() -> None:
    client = boto3.client("s3", region_name="us-east-1", config=Config(signature_version="s3v4"))
    client._request_signer._credentials = None  # whatever the machine's chain would find
    presign = presigner(client, "test-media", 60)
    assert not isinstance(presign, FastPresigner)
    with pytest.raises(NoCredentialsError):
        presign("a.jpg")


def test_a_signature_it_does_not_compute_falls_back_to_botocore() -> None:
    client = boto3.client(
        "s3",
        region_name="us-east-1",
        aws_access_key_id=CANARY_KEY_ID,
        aws_secret_access_key=CANARY_SECRET,
        config=Config(signature_version="s3"),  # SigV2 query auth
    )
    presign = presigner(client, "test-media", 60)
    assert not isinstance(presign, FastPresigner)
    assert "Signature=" in presign("a.jpg") and "X-Amz-Signature" not in presign("a.jpg")


@pytest.mark.parametrize("token", [None, CANARY_TOKEN])
def test_url_fetches_the_object_from_moto_server(s3_server: LocalS3, token: str | None) -> None:
    client = bulkimg_client(s3_server.endpoint_url, s3_server.region, token)
    bucket = f"presign-{'token' if token else 'keys'}"
    s3_server.client().create_bucket(Bucket=bucket)
    key = "sorted-media/11/02/19/1102192 1a+ü%~-1.jpg"
    s3_server.client().put_object(Bucket=bucket, Key=key, Body=b"image bytes")
    fast = presigner(client, bucket, 600)
    assert isinstance(fast, FastPresigner)
    with urllib.request.urlopen(fast(key), timeout=10) as response:
        assert response.read() == b"image bytes"
