"""formats/nightly_report.py: report.json reads back as written, and report.md says the same for
people."""

from __future__ import annotations

from pathlib import Path

import orjson

from bulkimg.formats.nightly_report import (
    REPORT_FILE,
    REPORT_MARKDOWN,
    NightlyReport,
    read_nightly_report,
    write_nightly_report,
)

REPORT = NightlyReport(
    completed_at="2026-12-04T03:00:00+00:00",
    reconciled={"products": 12, "images": 30},
    groups=40, groups_unchanged=30, groups_sent=10,
    outcome={"ok": 9, "failed": 1},
    bulk_operations=4, shopify_calls=21,
    s3_requests={"ListObjectsV2": 3, "GetObject": 25}, s3_calls_per_group=0.7,
    images_fetched=25, images_uploaded=24,
    products_created=2, products_conflict=1, images_adopted=5, images_replaced=3,
    images_removed=1, images_kept_foreign=4, variant_images_swapped=6, variant_images_kept=7,
    upload_success_rate=0.96, seconds_per_image_sku=0.125, cache_hit_rate=0.5,
    missing_occurrences=3, failures=1, exit_code=2,
)  # fmt: skip


def test_a_report_reads_back_equal_to_the_one_written(tmp_path: Path) -> None:
    write_nightly_report(tmp_path, REPORT)
    assert read_nightly_report(tmp_path) == REPORT


def test_report_json_holds_every_metric_by_name(tmp_path: Path) -> None:
    write_nightly_report(tmp_path, REPORT)
    data = orjson.loads((tmp_path / REPORT_FILE).read_bytes())
    assert data == REPORT.model_dump(mode="json")
    assert data["s3_requests"] == {"ListObjectsV2": 3, "GetObject": 25}
    assert data["products_not_created"] == 0 and data["exit_code"] == 2


def test_a_report_with_fields_this_version_does_not_know_still_reads(tmp_path: Path) -> None:
    (tmp_path / REPORT_FILE).write_text('{"completed_at": "t", "groups": 3, "new_metric": 1}')
    assert read_nightly_report(tmp_path) == NightlyReport(completed_at="t", groups=3)


def test_report_md_states_every_metric_in_its_line(tmp_path: Path) -> None:
    write_nightly_report(tmp_path, REPORT)
    assert (tmp_path / REPORT_MARKDOWN).read_text(encoding="utf-8") == (
        "# bulkimg run\n"
        "\n"
        "- completed: 2026-12-04T03:00:00+00:00 (exit code 2)\n"
        "- groups: 40; sent to Shopify: 10; unchanged: 30\n"
        "- outcome: ok 9, failed 1\n"
        "- bulk operations: 4; images uploaded: 24 (success rate 96.0%)\n"
        "- S3 requests: {'ListObjectsV2': 3, 'GetObject': 25}; cache hit rate 50.0%\n"
        "- on the shop: products created 2, products conflict 1, products not created 0,"
        " images adopted 5, images replaced 3, images removed 1, images kept foreign 4,"
        " variant images swapped 6, variant images kept 7\n"
        "- variants without image: 3; failures: 1\n"
        "- state rebuilt from the shop first: {'products': 12, 'images': 30}\n"
    )


def test_a_run_that_sent_nothing_and_rebuilt_no_state_says_so(tmp_path: Path) -> None:
    write_nightly_report(tmp_path, NightlyReport(completed_at="t", reconciled={}))
    lines = (tmp_path / REPORT_MARKDOWN).read_text(encoding="utf-8").splitlines()
    assert "- outcome: nothing sent" in lines
    assert "- bulk operations: 0; images uploaded: 0 (success rate 100.0%)" in lines
    assert lines[-1] == "- variants without image: 0; failures: 0"
    assert not any("rebuilt" in line for line in lines)
