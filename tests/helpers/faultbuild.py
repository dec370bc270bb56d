"""The fault matrix's shared build of the sample catalog, copied per test, and its accounting:
every group done or a failure, each image uploaded once, no secret in any output."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from bulkimg.config import Settings, load_settings
from bulkimg.demo.run import LocalS3
from bulkimg.demo.samples import SampleData
from bulkimg.run.build import run_build
from bulkimg.sandbox import SandboxShop
from tests.helpers.env import CANARY_KEY_ID, CANARY_SECRET, CANARY_TOKEN, SHOP_TOKEN, secrets_in
from tests.helpers.files import read_jsonl
from tests.helpers.fixtures import MakeSettings

# A few groups of the sample catalog (12 images): with images, without, several variants.
GROUPS = ("LGD-101792", "GID-100288", "GID-101049", "LGD-101084", "LGD-101091", "GID-101098",
          "LGD-101161")  # fmt: skip


def build_sample(
    tmp_path_factory: pytest.TempPathFactory, s3_server: LocalS3, sample: SampleData
) -> Path:
    """GROUPS of the sample catalog built once per session (output/, logs/, the catalog and
    the bucket's name) into a folder that tests copy."""
    root = tmp_path_factory.getbasetemp() / "faults-built"
    if (root / "bucket").is_file():
        return root
    root.mkdir(exist_ok=True)
    client = s3_server.client()
    bucket = "faults-sample"
    client.create_bucket(Bucket=bucket)
    sample.upload(client, bucket)
    settings = load_settings(
        {
            "catalog": str(sample.write_csv(root / "nav_items.csv")),
            "aws_s3_bucket": bucket,
            "aws_endpoint_url_s3": s3_server.endpoint_url,
            "aws_access_key_id": CANARY_KEY_ID,
            "aws_secret_access_key": CANARY_SECRET,
            "aws_session_token": CANARY_TOKEN,
            "aws_region": "us-east-1",
            "output_dir": root / "output",
            "logs_dir": root / "logs",
            "cache_dir": root / "cache",
            "state_file": root / "output" / "state.sqlite",
        },
        env_file=None,
    )
    run_build(settings, list(GROUPS))
    (root / "bucket").write_text(bucket)
    return root


def copy_build(built: Path, dest: Path) -> None:
    """The module's build under `dest`, its file paths rewritten."""
    for name in ("output", "logs"):
        shutil.copytree(built / name, dest / name)
    for name in ("build-report.json", "plan.jsonl"):
        path = dest / "output" / name
        path.write_text(path.read_text().replace(str(built), str(dest)))


def planned_uploads(settings: Settings) -> int:
    """Images the plan sends by URL (each one the shop must download exactly once)."""
    plans = read_jsonl(settings.output_dir / "plan.jsonl")
    return sum(
        1 for p in plans if p["status"] == "planned" for m in p["media"] if not m.get("media_id")
    )


def assert_accounted(
    settings: Settings, shop: SandboxShop, said: str = ""
) -> dict[str, dict[str, Any]]:
    """Each group once in the manifest, failed exactly when it has failure lines, all of them
    retryable with a reason; no duplicated image on any product; no secret written or `said`."""
    out = settings.output_dir
    plans = {p["group_id"]: p for p in read_jsonl(out / "plan.jsonl")}
    manifest = read_jsonl(out / "manifest.jsonl")
    assert sorted(e["group_id"] for e in manifest) == sorted(plans)
    failures = read_jsonl(out / "failures.jsonl")
    failed = {str(f["group_id"]) for f in failures}
    for entry in manifest:
        assert entry["status"] in ("done", "missing", "failed")
        assert (entry["status"] == "failed") == (entry["group_id"] in failed), entry
    for failure in failures:
        assert failure["retryable"], failure
        assert failure["errors"] and all(e["code"] and e["message"] for e in failure["errors"])
    by_status = {e["group_id"]: e for e in manifest}
    store = shop.services.store
    for product in store.products():
        alts = [m.alt for m in store.media_of_product(product.id)]
        group = next(p for p in plans.values() if p["handle"] == product.handle)
        wanted = [m["alt"] for m in group["media"]]
        assert len(alts) == len(set(alts)), f"duplicated image on {product.handle}: {alts}"
        assert set(alts) <= set(wanted)
        if by_status[group["group_id"]]["status"] != "failed":
            assert sorted(alts) == sorted(wanted)
    assert_no_secrets(settings, said)
    return by_status


def assert_no_secrets(settings: Settings, text: str = "") -> None:
    """No canary in outputs, logs, state or `text`; presigned URLs only in productSet lines."""
    out = settings.output_dir
    files = [
        p
        for root in (out, settings.logs_dir)
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith("productset")
    ]
    assert secrets_in(files, text) == []
    everything = [p for p in out.rglob("*") if p.is_file()]
    for file in [*everything, *settings.logs_dir.rglob("*")]:
        if file.is_file():
            assert SHOP_TOKEN.encode() not in file.read_bytes(), file
    assert SHOP_TOKEN not in text and CANARY_SECRET not in text


def all_done(manifest: dict[str, dict[str, Any]]) -> bool:
    return {e["status"] for e in manifest.values()} <= {"done", "missing"}


def settings_over_build(
    built: Path, tmp_path: Path, make_settings: MakeSettings, s3_server: LocalS3, shop_url: str
) -> Settings:
    """Settings over a copy of the fault matrix's build (`built`), for a test's sandbox shop."""
    copy_build(built, tmp_path)
    result: Settings = make_settings(
        catalog=str(built / "nav_items.csv"),
        aws_s3_bucket=(built / "bucket").read_text(),
        aws_endpoint_url_s3=s3_server.endpoint_url,
        shopify_shop=shop_url,
        shopify_access_token=SHOP_TOKEN,
        poll_interval=0.05,
        poll_max_interval=0.2,
        media_wait_seconds=15,
        shopify_timeout=5,
    )
    return result
