"""Shared by several test modules: what a build did with each catalog row (accounting), and
where the in-process moto S3's presigned GETs go."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulkimg.config import Settings
from bulkimg.demo.samples import SampleData
from bulkimg.formats.build_report import BuildReport
from bulkimg.plan.names import shopify_filename
from tests.helpers.files import read_jsonl

LOG_LINE = re.compile(
    r"Product Group: (?P<group>[^|]*) \| Product SKU: (?P<sku>[^|]*) \|.*Error: (?P<error>.*)$"
)

Row = tuple[str, str]  # (group id, variant SKU)


@dataclass(frozen=True, slots=True)
class Accounting:
    """What a build did with each catalog row, and the S3 keys each written group got."""

    rows: dict[Row, str]  # "written", "deferred" or "missing: <log error>"
    media: dict[str, list[str]]  # group id -> S3 keys of its line, in order

    def changed(self, other: Accounting) -> set[str]:
        """Group ids whose rows or media differ from `other`."""
        groups = {row[0] for row, outcome in self.rows.items() if other.rows.get(row) != outcome}
        return groups | {
            g
            for g in self.media.keys() | other.media.keys()
            if self.media.get(g) != other.media.get(g)
        }


def account(settings: Settings, report: BuildReport, sample: SampleData) -> Accounting:
    """Check that every catalog row ends in exactly one outcome; the outcomes."""
    out = settings.output_dir
    plans = {p["group_id"]: p for p in read_jsonl(out / "plan.jsonl")}
    lines = {Path(f).name: read_jsonl(Path(f)) for f in report.productset_files}
    logged = Counter[Row]()
    errors: dict[Row, str] = {}
    for text in Path(report.missing_log).read_text(encoding="utf-8").splitlines():
        match = LOG_LINE.search(text)
        assert match, text
        row = (match["group"], match["sku"])
        logged[row] += 1
        errors[row] = match["error"]
    assert all(n == 1 for n in logged.values()), logged
    handles = [line["identifier"]["handle"] for part in lines.values() for line in part]
    assert len(handles) == len(set(handles)) == report.groups_written, "a group written twice"
    assert set(report.groups_deferred) == {g for g, p in plans.items() if p["status"] == "deferred"}

    rows: dict[Row, str] = {}
    media: dict[str, list[str]] = {}
    for catalog_row in sample.rows:
        group, sku = catalog_row["Web_Product_Group_ID"], catalog_row["No_"]
        plan = plans[group]
        variant = next(v for v in plan["variants"] if v["sku"] == sku)
        if plan["status"] == "deferred":
            assert plan["file"] is None and plan["handle"] not in handles
            assert (group, sku) not in logged, f"{group}/{sku} is both deferred and missing"
            rows[(group, sku)] = "deferred"
            continue
        assert plan["status"] == "planned", plan
        line = lines[plan["file"]][plan["line"] - 1]
        assert line["identifier"]["handle"] == plan["handle"]
        assert sku in [v["sku"] for v in line["input"]["variants"]]
        files = [f["filename"] for f in line["input"].get("files", [])]
        assert files == [shopify_filename(m["s3_key"], m["etag"]) for m in plan["media"]]
        media[group] = [m["s3_key"] for m in plan["media"]]
        if variant["image_s3_key"] is not None:
            assert variant["image_s3_key"] in media[group]
            assert (group, sku) not in logged, f"{group}/{sku} is both written and missing"
            rows[(group, sku)] = "written"
        else:
            assert errors.get((group, sku)), f"{group}/{sku} has no image and no log line"
            rows[(group, sku)] = f"missing: {errors[(group, sku)]}"
    assert len(rows) == len(sample.rows)
    assert set(logged) == {row for row, outcome in rows.items() if outcome.startswith("missing")}
    return Accounting(rows, media)


class S3Gets:
    """Where the `s3` fixture's presigned GETs (and listing pages) go: `transport`, moto's S3
    app in this process unless a test puts another there (tests/s3/test_s3get.py's Recorder)."""

    def __init__(self) -> None:
        self.transport: Any = None

    def __call__(self, request: Any) -> Any:
        return self.transport.handle_request(request)


def moto_s3_transport() -> Any:
    """An httpx transport to moto's S3 app in this process (what mock_aws serves to boto3)."""
    import httpx
    from moto.moto_server.werkzeug_app import create_backend_app

    app = create_backend_app("s3")

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        # httpx hands WSGI the path as text; WSGI wants it as latin-1 decoded UTF-8 bytes.
        environ["PATH_INFO"] = environ["PATH_INFO"].encode("utf-8").decode("latin-1")
        return app(environ, start_response)

    return httpx.WSGITransport(app=wsgi)
