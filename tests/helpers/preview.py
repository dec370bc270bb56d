"""Inputs and readers of output/preview.html: plan lines (hostile ones too), the page's cards
parsed back, and synthetic plans for the page at scale."""

from __future__ import annotations

import base64
import gzip
import hashlib
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import orjson

from bulkimg.outputs import output_set
from bulkimg.report.preview import (
    PreviewOptions,
    presigner,
    write_preview,
)
from bulkimg.run.preview import render_preview
from bulkimg.s3.client import make_s3_client
from tests.helpers.env import CANARY_KEY_ID, CANARY_TOKEN
from tests.helpers.fixtures import MakeSettings

HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "javascript:alert(1)",
    "</script><script>alert(1)</script>",
    "'single' \"double\" `back` <!-- -->",
    "Bague à solitaire 💍 \u2028\u2029 <b>bold</b> &amp; &lt;",
]


def media(
    key: str, position: int = 1, alt: str = "alt", image_sku: str = "820020"
) -> dict[str, Any]:
    return {
        "position": position,
        "s3_key": key,
        "image_sku": image_sku,
        "variation": position,
        "width": 800,
        "height": 600,
        "etag": "0123456789abcdef0123456789abcdef",
        "alt": alt,
    }


def plan_line(group_id: str, **fields: Any) -> dict[str, Any]:
    key = f"sorted-media/82/00/20/{group_id}-1a-1.jpg"
    line: dict[str, Any] = {
        "group_id": group_id,
        "handle": group_id.lower(),
        "title": f"Ring {group_id}",
        "status": "planned",
        "deferred_reason": None,
        "file": "productset.jsonl",
        "line": 1,
        "media": [media(key)],
        "variants": [{"sku": f"{group_id}-v1", "image_sku": "820020", "image_s3_key": key}],
        "missing": [],
        "rejected": [],
    }
    line.update(fields)
    return line


def hostile_line(value: str, n: int) -> dict[str, Any]:
    """A plan line whose every catalog and S3 value is `value`."""
    key = f"sorted-media/{value}/{n}-1a-1.jpg"
    return plan_line(
        f"{value}#{n}",
        handle=value,
        title=value,
        media=[media(key, alt=value, image_sku=value)],
        variants=[
            {"sku": value, "image_sku": value, "image_s3_key": key},
            {"sku": f"{value}-2", "image_sku": value, "image_s3_key": None},
        ],
        missing=[{"sku": f"{value}-2", "image_sku": value, "reason": value, "detail": value}],
        rejected=[{"image_sku": value, "s3_key": f"{key}.txt", "reason": value, "detail": value}],
    )


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


class PageParser(HTMLParser):
    """Every start tag with its attributes, and the text of each script and style element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.raw: dict[str, list[tuple[dict[str, str | None], str]]] = {"script": [], "style": []}
        self._open: tuple[str, dict[str, str | None]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag in self.raw:
            self._open = (tag, dict(attrs))

    def handle_data(self, data: str) -> None:
        if self._open:
            self.raw[self._open[0]].append((self._open[1], data))
            self._open = None


def parse_page(html: str) -> PageParser:
    parser = PageParser()
    parser.feed(html)
    parser.close()
    return parser


def page_cards(html: str) -> list[dict[str, Any]]:
    """The cards embedded in a page (base64 of gzip of a JSON array)."""
    (data,) = [t for a, t in parse_page(html).raw["script"] if a.get("id") == "cards-data"]
    cards: list[dict[str, Any]] = orjson.loads(gzip.decompress(base64.b64decode(data)))
    return cards


def hostile_page(make_settings: MakeSettings, tmp_path: Path) -> tuple[Any, str]:
    """A rendered page whose plan, manifest and failures hold only hostile values."""
    settings = make_settings()
    lines = [hostile_line(value, n) for n, value in enumerate(HOSTILE)]
    write_jsonl(settings.output_dir / "plan.jsonl", lines)
    manifest = [
        {
            "group_id": line["group_id"],
            "product_id": value,
            "handle": value,
            "status": "failed",
            "media": [{"id": value, "s3_key": value, "etag": value, "status": "FAILED"}],
            "variants": [{"sku": value, "id": value, "media_id": value, "s3_key": value}],
        }
        for line, value in zip(lines, HOSTILE, strict=True)
    ]
    signed = (
        f"https://x.example/a?X-Amz-Security-Token={CANARY_TOKEN}&X-Amz-Credential={CANARY_KEY_ID}"
    )
    failures = [
        {
            "phase": value,
            "group_id": line["group_id"],
            "handle": value,
            "file": value,
            "line": 1,
            "variables": {
                "input": {
                    "handle": value,
                    "title": value,
                    "productOptions": [],
                    "variants": [],
                    "files": [
                        {
                            "originalSource": signed,
                            "alt": value,
                            "contentType": "IMAGE",
                            "filename": "a.jpg",
                        }
                    ],
                }
            },
            "errors": [{"code": value, "field": [value, "x"], "message": value}],
            "retryable": False,
        }
        for line, value in zip(lines, HOSTILE, strict=True)
    ]
    write_jsonl(settings.output_dir / "manifest.jsonl", manifest)
    write_jsonl(settings.output_dir / "failures.jsonl", failures)
    render_preview(settings)
    return settings, (settings.output_dir / "preview.html").read_text(encoding="utf-8")


def synthetic_plan(path: Path, groups: int) -> None:
    """`groups` groups of 3 images, 3 variants and one rejected file (the demo's averages)."""
    with path.open("wb") as out:
        for g in range(groups):
            sku = str(820_000 + g)
            folder = f"sorted-media/{sku[:2]}/{sku[2:4]}/{sku[4:6]}/"
            keys = [f"{folder}{sku}-{n}a-{10_000 + n}.jpg" for n in (1, 2, 3)]
            line = plan_line(
                f"LGD-{100_000 + g}",
                title="Lab Diamond Solitaire Ring",
                media=[media(k, n, f"{sku} - Image {n}", sku) for n, k in enumerate(keys, 1)],
                variants=[
                    {"sku": str(900_000 + 3 * g + v), "image_sku": sku, "image_s3_key": keys[0]}
                    for v in range(3)
                ],
                rejected=[
                    {"image_sku": sku, "s3_key": f"{folder}{sku}-1b-1.jpg", "reason": "suffix"}
                ],
            )
            out.write(orjson.dumps(line) + b"\n")


def fast_presigner(settings: Any) -> Any:
    """URLs exactly as long as botocore's, without its ~0.5 ms per signature."""
    real = presigner(make_s3_client(settings), settings.aws_s3_bucket, settings.presign_seconds)
    sample = real("KEY")
    head, query = sample.split("/KEY?")
    query = query.split("X-Amz-Signature=")[0]

    def presign(key: str) -> str:
        signature = hashlib.sha256(key.encode()).hexdigest()
        return f"{head}/{key}?{query}X-Amz-Signature={signature}"

    return presign


def render_synthetic(settings: Any, groups: int) -> tuple[Any, float]:
    synthetic_plan(settings.output_dir / "plan.jsonl", groups)
    started = time.perf_counter()
    with output_set() as outputs:
        result = write_preview(
            outputs,
            PreviewOptions.from_settings(settings),
            settings.output_dir / "plan.jsonl",
            None,
            presign=fast_presigner(settings),
        )
        outputs.commit()
    return result, time.perf_counter() - started
