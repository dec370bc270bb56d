"""One TLS configuration for every S3 sender: a private CA, with and without a proxy.

S3 is served over HTTPS on loopback (tests/helpers/s3faults.py's proxy, wrapped in TLS, in front of
moto's server) with a certificate signed by a CA made here that no bundle trusts. The direct,
httpx and boto3 senders must all trust it from AWS_CA_BUNDLE or the AWS config file's
ca_bundle, and all refuse it (one line naming the endpoint and the CA) without.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bulkimg.config import Settings
from bulkimg.demo.run import LocalS3
from bulkimg.demo.samples import SampleData
from bulkimg.errors import ConfigError
from bulkimg.run.build import run_build
from bulkimg.s3.client import _ssl_context
from tests.helpers.env import secrets_in
from tests.helpers.fixtures import MakeSettings
from tests.helpers.s3 import account
from tests.helpers.s3faults import FaultProxy, fault_proxy
from tests.helpers.tls import PrivateCa, connect_proxy, private_ca


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> PrivateCa:
    return private_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls_bucket(s3_server: LocalS3, sample: SampleData) -> str:
    name = f"tls-{uuid.uuid4().hex[:8]}"
    client = s3_server.client()
    client.create_bucket(Bucket=name)
    sample.upload(client, name)
    return name


@pytest.fixture
def https_s3(s3_server: LocalS3, ca: PrivateCa) -> Iterator[FaultProxy]:
    """S3 over HTTPS with the private CA's certificate."""
    with fault_proxy(s3_server.endpoint_url, tls=ca.server_context) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                 "all_proxy", "NO_PROXY", "no_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    _ssl_context.cache_clear()


def build_settings(
    make_settings: MakeSettings,
    endpoint: str,
    bucket: str,
    sample: SampleData,
    tmp_path: Path,
    **kw: Any,
) -> Settings:
    settings: Settings = make_settings(
        catalog=str(sample.write_csv(tmp_path / "nav_items.csv")),
        aws_s3_bucket=bucket,
        aws_endpoint_url_s3=endpoint,
        **kw,
    )
    return settings


@pytest.mark.parametrize("source", ["AWS_CA_BUNDLE", "config file"])
@pytest.mark.parametrize("get_client", ["direct", "httpx", "boto3"])
@pytest.mark.fault_matrix(
    area="S3",
    fault="S3 over HTTPS with a certificate of a private CA, given by AWS_CA_BUNDLE or the AWS"
    " config file's ca_bundle",
    outcome="trusted alike by the listing, the header reads (direct, httpx, boto3) and the link"
    " check; every row as over HTTP",
)
def test_a_private_ca_is_trusted_by_every_sender(
    make_settings: MakeSettings,
    https_s3: FaultProxy,
    tls_bucket: str,
    ca: PrivateCa,
    sample: SampleData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    get_client: str,
) -> None:
    if source == "AWS_CA_BUNDLE":
        monkeypatch.setenv("AWS_CA_BUNDLE", str(ca.ca_file))
    else:
        config = tmp_path / "aws-config"
        config.write_text(f"[default]\nca_bundle = {ca.ca_file}\n")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    settings = build_settings(
        make_settings, https_s3.url, tls_bucket, sample, tmp_path, s3_get_client=get_client
    )
    report = run_build(settings).report
    assert https_s3.url.startswith("https://")
    assert report.link_check is not None and report.link_check.status == 206
    assert not report.groups_deferred and report.images_accepted > 0
    if get_client != "boto3":
        assert report.s3_requests["GetObject"] == https_s3.requests["GET"] - 1  # + link check
    account(settings, report, sample)


@pytest.mark.fault_matrix(
    area="S3",
    fault="S3 over HTTPS with a certificate of a private CA, and no CA bundle given",
    outcome="build fails at its first request with one line (ConfigError, exit 2) naming the"
    " endpoint and the CA bundle in use; no output written, no secret",
)
def test_an_untrusted_certificate_is_one_line_naming_the_endpoint_and_the_ca(
    make_settings: MakeSettings,
    https_s3: FaultProxy,
    tls_bucket: str,
    sample: SampleData,
    tmp_path: Path,
) -> None:
    settings = build_settings(make_settings, https_s3.url, tls_bucket, sample, tmp_path)
    with pytest.raises(ConfigError) as caught:
        run_build(settings)
    message = str(caught.value)
    assert f"TLS to {https_s3.url} failed" in message
    assert "certifi's default bundle" in message and "AWS_CA_BUNDLE" in message
    assert "\n" not in message and secrets_in([], message) == []
    assert not (settings.output_dir / "plan.jsonl").exists()


def test_a_ca_bundle_that_cannot_be_read_is_one_line(
    make_settings: MakeSettings,
    https_s3: FaultProxy,
    tls_bucket: str,
    sample: SampleData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = tmp_path / "no-such-ca.pem"
    monkeypatch.setenv("AWS_CA_BUNDLE", str(missing))
    settings = build_settings(make_settings, https_s3.url, tls_bucket, sample, tmp_path)
    with pytest.raises(ConfigError) as caught:
        run_build(settings)
    assert str(missing) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("get_client", ["direct", "httpx"])
@pytest.mark.fault_matrix(
    area="S3",
    fault="S3 over HTTPS behind an HTTPS_PROXY (CONNECT), with a private CA in AWS_CA_BUNDLE",
    outcome="every request tunnels through the proxy (httpx is chosen for the GETs) and trusts"
    " the CA; every row as without the proxy",
)
def test_a_private_ca_behind_a_proxy(
    make_settings: MakeSettings,
    https_s3: FaultProxy,
    tls_bucket: str,
    ca: PrivateCa,
    sample: SampleData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    get_client: str,
) -> None:
    monkeypatch.setenv("AWS_CA_BUNDLE", str(ca.ca_file))
    with connect_proxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        settings = build_settings(
            make_settings, https_s3.url, tls_bucket, sample, tmp_path, s3_get_client=get_client
        )
        report = run_build(settings).report
    assert report.link_check is not None and report.link_check.status == 206
    assert not report.groups_deferred and report.images_accepted > 0
    origin = https_s3.url.removeprefix("https://")
    assert proxy.tunnels and set(proxy.tunnels) == {origin}
    account(settings, report, sample)
