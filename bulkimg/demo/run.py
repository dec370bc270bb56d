"""`bulkimg demo`: a local S3 (moto's server on 127.0.0.1) filled with a sample catalog, then build.

Needs no credentials and no network. moto is an optional dependency (`pip install bulkimg[demo]`).
"""

from __future__ import annotations

import logging
import shutil
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3

from bulkimg.config import load_settings
from bulkimg.errors import ConfigError
from bulkimg.progress import Reporter
from bulkimg.run.build import BuildResult, run_build
from bulkimg.run.ledger import productset_files_of_build
from bulkimg.run.lock import LOCK_FILE, folder_lock_paths, hold_locks
from bulkimg.run.preview import render_preview
from bulkimg.run.retry import run_retry
from bulkimg.run.submit import Submission, SubmitOutcome
from bulkimg.sandbox.seed import SeedReport
from bulkimg.sandbox.snapshot import Change
from bulkimg.shopify.client import client_from_settings

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
        # Everything in the demo's folder: a real run finds none of it (run.json, state file).
        "output_dir": workdir,
        "logs_dir": workdir / "logs",
        "state_file": workdir / DEMO_STATE_FILE,
    }


DEMO_STATE_FILE = "state.sqlite"
# Marks a folder the demo made: the next demo may empty it (any other non-empty folder is refused).
DEMO_MARKER = ".bulkimg-demo"
KEPT_ACROSS_DEMOS = frozenset({DEMO_MARKER, "cache", LOCK_FILE, DEMO_STATE_FILE + ".lock"})
DEMO_SHOP_TOKEN = "shpat_demo_sandbox"  # noqa: S105 - the local sandbox's token, not a secret
# The demo shows a failure and its retry: this image's download fails on the first submit.
DEMO_FAILING_IMAGE = "1102192-10a-300.gif"


@dataclass(slots=True)
class DemoRun:
    """What `bulkimg demo` did, step by step."""

    build: BuildResult
    submit: SubmitOutcome
    retry: SubmitOutcome | None
    preview: Path
    seeded: SeedReport | None = None
    """`--existing-shop`: what the shop held before the run."""
    changes: list[Change] | None = None
    """`--existing-shop`: what changed on the shop's products, field by field."""


def run_demo(
    workdir: Path,
    config_file: Path | None,
    reporter: Reporter,
    say: Callable[[str], None],
    show_build: Callable[[BuildResult], None],
    show_submit: Callable[[SubmitOutcome], None],
    *,
    existing_shop: bool = False,
) -> DemoRun:
    """build → submit --wait → retry on a sample catalog, a local S3 and the sandbox shop.

    ``existing_shop``: the shop is first seeded as the catalog's existing workflow left it
    (bulkimg.sandbox.seed), and the run ends with what changed on its products.

    Every file goes to `workdir` (its own output folder, state file and logs), emptied first:
    the demo can run any number of times, and a real run never finds its state.
    """
    locks = folder_lock_paths(workdir, workdir / DEMO_STATE_FILE)
    with hold_locks(locks, "demo") as grant:
        for holder in grant.stale:
            say(f"took over the lock left by {holder.describe()}: it is gone")
        fresh_workdir(workdir)
        return _run_demo(workdir, config_file, reporter, say, show_build, show_submit,
                         existing_shop)  # fmt: skip


def fresh_workdir(workdir: Path) -> None:
    """Empty the folder an earlier demo left (its shop is gone: its run and state mean nothing
    now), keeping the header cache; a non-empty folder no demo made is refused."""
    workdir.mkdir(parents=True, exist_ok=True)
    marker = workdir / DEMO_MARKER
    left = [p for p in workdir.iterdir() if p.name not in KEPT_ACROSS_DEMOS]
    if left and not marker.is_file():
        raise ConfigError(f"{workdir} is not empty and not a demo folder: give --workdir a new one")
    for path in left:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    marker.touch()


def _run_demo(
    workdir: Path,
    config_file: Path | None,
    reporter: Reporter,
    say: Callable[[str], None],
    show_build: Callable[[BuildResult], None],
    show_submit: Callable[[SubmitOutcome], None],
    existing_shop: bool,
) -> DemoRun:
    from bulkimg.catalog import ColumnMap, CSVSource, read_catalog
    from bulkimg.demo.samples import demo_data
    from bulkimg.sandbox import FaultRule, SandboxConfig, SandboxShop, serve
    from bulkimg.sandbox.seed import images_from_objects, seed_existing_catalog
    from bulkimg.sandbox.snapshot import diff, snapshot

    data = demo_data()
    catalog = data.write_csv(workdir / "catalog.csv")
    shop_state = workdir / "shop.sqlite"
    shop_config = SandboxConfig(access_token=DEMO_SHOP_TOKEN, media_processing_delay=0.05)
    with (
        local_s3() as s3,
        SandboxShop(shop_state, shop_config) as shop,
        serve(shop) as shop_url,
    ):
        client = s3.client()
        client.create_bucket(Bucket=DEMO_BUCKET)
        data.upload(client, DEMO_BUCKET)
        say(f"Local S3 at {s3.endpoint_url}: {len(data.objects)} objects in s3://{DEMO_BUCKET}")
        say(f"Sandbox shop at {shop_url}; catalog {catalog} ({len(data.rows)} rows)")
        seeded = before = None
        if existing_shop:
            groups = read_catalog(CSVSource(catalog, ColumnMap())).groups
            seeded = seed_existing_catalog(shop, groups, images_from_objects(data.objects))
            say(f"Existing shop: {seeded.summary()}")
            before = snapshot(shop)
        overrides = {
            **demo_settings(s3, catalog, workdir),
            # Thumbnails embedded: the page must work after this local S3 stops.
            "preview_thumbnails": True,
            "shopify_shop": shop_url,
            "shopify_access_token": DEMO_SHOP_TOKEN,
            "poll_interval": 0.2,
            "poll_max_interval": 1.0,
            "media_wait_seconds": 60,
        }
        settings = load_settings(overrides, config_file)
        built = run_build(settings, None, reporter)
        show_build(built)

        say(f"Submitting; the sandbox will fail the download of {DEMO_FAILING_IMAGE}")
        shop.faults.add(FaultRule("media_fetch", status=404, url_contains=DEMO_FAILING_IMAGE))
        with client_from_settings(settings) as shopify:
            submission = Submission(settings, shopify, reporter)
            submitted = submission.run(
                submission.start(productset_files_of_build(settings.output_dir)), wait=True
            )
            show_submit(submitted)
            retried = None
            if submitted.exit_code == 1:
                shop.faults.clear()
                failures = settings.output_dir / "failures.jsonl"
                say(f"Retrying {failures}")
                _, retried = run_retry(settings, shopify, failures, client, reporter)
                if retried is not None:
                    show_submit(retried)
        preview = render_preview(settings, client)
        changes = diff(before, snapshot(shop)) if before is not None else None
    return DemoRun(built, submitted, retried, preview.path, seeded, changes)
