"""`bulkimg build` end to end on moto S3 with the sample catalog: every output and its rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from mypy_boto3_s3 import S3Client

from bulkimg.demo.samples import SampleData
from bulkimg.errors import ConfigError
from bulkimg.plan.names import shopify_filename
from bulkimg.run.build import run_build
from bulkimg.shopify.documents import load_document, validate_operation
from tests.helpers.env import BUCKET, secrets_in
from tests.helpers.fixtures import MakeSettings

LOG_LINE = re.compile(
    r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] Product Group: (?P<group>[^|]*)"
    r" \| Product SKU: (?P<sku>[^|]*)"
    r" \| Image SKU: (?P<image_sku>[^|]*) \| S3 Path: (?P<path>[^|]*) \| Error: (?P<error>.*)$"
)


@pytest.fixture
def built(s3: S3Client, make_settings: MakeSettings, tmp_path: Path, sample: SampleData) -> Any:
    data = sample
    data.upload(s3, BUCKET)
    settings = make_settings(catalog=str(data.write_csv(tmp_path / "catalog.csv")))
    result = run_build(settings, None, s3_client=s3)
    return settings, result


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def plan_of(settings: Any, group_id: str) -> dict[str, Any]:
    plans = read_jsonl(settings.output_dir / "plan.jsonl")
    return next(p for p in plans if p["group_id"] == group_id)


def test_build_writes_one_line_per_group_and_a_plan_pointing_at_it(built: Any) -> None:
    settings, result = built
    lines = read_jsonl(settings.output_dir / "productset.jsonl")
    plans = read_jsonl(settings.output_dir / "plan.jsonl")
    assert len(lines) == len(plans) == result.report.groups == result.report.groups_written
    for plan in plans:
        line = lines[plan["line"] - 1]
        assert plan["file"] == "productset.jsonl"
        assert line["identifier"] == {"handle": plan["handle"]}
        assert [v["sku"] for v in line["input"]["variants"]] == [v["sku"] for v in plan["variants"]]


def test_media_order_is_first_appearance_then_variation_number(built: Any) -> None:
    settings, _ = built
    plan = plan_of(settings, "LGD-101792")
    assert [(m["image_sku"], m["variation"]) for m in plan["media"]] == [
        ("1102192", 1),
        ("1102192", 2),
        ("1102192", 10),
    ]
    assert plan["media"][1]["s3_key"].endswith("1102192-2a-201.png")  # the newer 2a
    assert [m["alt"] for m in plan["media"]] == [
        "1102192 - Image 1",
        "1102192 - Image 2",
        "1102192 - Image 10",
    ]
    assert plan["handle"] == "lgd-101792"
    assert plan["variants"][0]["image_s3_key"] == plan["media"][0]["s3_key"]
    line = read_jsonl(settings.output_dir / "productset.jsonl")[plan["line"] - 1]
    files = line["input"]["files"]
    assert [f["filename"] for f in files] == [
        shopify_filename(m["s3_key"], m["etag"]) for m in plan["media"]
    ]
    assert all(f["contentType"] == "IMAGE" for f in files)
    assert "Signature=" in files[0]["originalSource"]


def test_group_without_any_image_keeps_its_media_untouched(built: Any) -> None:
    settings, _ = built
    plan = plan_of(settings, "LGD-100040")
    assert plan["media"] == []
    line = read_jsonl(settings.output_dir / "productset.jsonl")[plan["line"] - 1]
    assert "files" not in line["input"]  # productSet would delete every file of the product


def test_missing_images_log_has_every_variant_without_image_and_why(built: Any) -> None:
    settings, result = built
    log = Path(result.report.missing_log)
    assert log.parent == settings.logs_dir
    assert re.fullmatch(r"missing_images_\d{8}_\d{6}\.log", log.name)
    entries = [LOG_LINE.match(line) for line in log.read_text().splitlines()]
    assert all(entries)
    got = {(m["group"], m["image_sku"]): (m["path"], m["error"]) for m in entries if m}
    assert got[("LGD-100040", "799057")] == ("sorted-media/79/90/57/", "No images found in S3")
    assert got[("LGD-100040", "82/77/49")][1].startswith("Invalid Image_SKU")
    assert got[("LGD-101792", "")][1] == "No Image_SKU in catalog"
    assert got[("GID-100288", "498100")][1].startswith("No images matching pattern")
    assert got[("GID-100999", "555001")][1].startswith("All images too small or invalid")
    assert len(got) == sum(result.report.variants_missing_images.values())


def test_report_counts_requests_and_rejections(built: Any) -> None:
    settings, _ = built
    report = orjson.loads((settings.output_dir / "build-report.json").read_bytes())
    assert report["s3_requests"]["ListObjectsV2"] == report["list_pages"] >= 1
    assert report["s3_requests"]["GetObject"] >= report["images_probed"]
    assert report["images_rejected"]["variation suffix is not 'a'"] >= 1
    assert report["images_rejected"]["superseded by a newer file with the same variation"] == 1
    assert report["seconds_per_image_sku"] > 0


def test_second_build_with_no_s3_change_makes_no_get(s3: S3Client, built: Any) -> None:
    settings, first = built
    second = run_build(settings, None, s3_client=s3)
    assert first.report.s3_requests["GetObject"] > 0
    assert "GetObject" not in second.report.s3_requests
    assert second.report.cache_hits == first.report.images_probed


def test_every_line_validates_against_the_admin_schema(
    built: Any, admin_schemas: list[Any]
) -> None:
    settings, _ = built
    document = load_document("product_set")
    for line in read_jsonl(settings.output_dir / "productset.jsonl"):
        for schema in admin_schemas:
            assert validate_operation(schema, document, line) == []


def test_large_output_is_split_under_the_size_limit(
    s3: S3Client, make_settings: MakeSettings, tmp_path: Path, sample: SampleData
) -> None:
    data = sample
    data.upload(s3, BUCKET)
    catalog = str(data.write_csv(tmp_path / "catalog.csv"))
    settings = make_settings(catalog=catalog, max_jsonl_bytes=8000)
    result = run_build(settings, None, s3_client=s3)
    files = [Path(p) for p in result.report.productset_files]
    assert len(files) > 1
    assert [f.name for f in files][:2] == ["productset-0001.jsonl", "productset-0002.jsonl"]
    assert all(f.stat().st_size <= 8000 for f in files)
    for plan in read_jsonl(settings.output_dir / "plan.jsonl"):
        line = read_jsonl(settings.output_dir / plan["file"])[plan["line"] - 1]
        assert line["identifier"]["handle"] == plan["handle"]
    # A later build that fits one file removes the stale parts.
    run_build(make_settings(catalog=catalog), None, s3_client=s3)
    assert sorted(p.name for p in settings.output_dir.glob("productset*")) == ["productset.jsonl"]


@pytest.mark.fault_matrix(
    area="S3",
    fault="bucket missing on a later build",
    outcome="build fails; earlier outputs byte-identical, no temp file left",
)
def test_failed_build_leaves_earlier_outputs_untouched(
    s3: S3Client, built: Any, make_settings: MakeSettings
) -> None:
    settings, _ = built
    before = {p: p.read_bytes() for p in settings.output_dir.glob("*.json*")}
    broken = make_settings(catalog=settings.catalog, aws_s3_bucket="missing-bucket")
    with pytest.raises(ConfigError):
        run_build(broken, None, s3_client=s3)
    after = {p: p.read_bytes() for p in settings.output_dir.glob("*.json*")}
    assert after == before
    assert not list(settings.output_dir.glob(".*.tmp"))


def test_no_secret_reaches_plan_report_or_logs(built: Any) -> None:
    settings, _ = built
    outputs = [settings.logs_dir, settings.output_dir / "plan.jsonl"]
    outputs.append(settings.output_dir / "build-report.json")
    assert secrets_in(outputs) == []
    # The secret key signs URLs but never appears; the JSONL holds only presigned URLs.
    assert b"canary/secret" not in (settings.output_dir / "productset.jsonl").read_bytes()
