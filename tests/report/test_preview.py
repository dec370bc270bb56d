"""The run preview: built from plan, manifest and failures; nothing in them can inject markup."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from mypy_boto3_s3 import S3Client
from PIL import Image

from bulkimg.cli import cli
from bulkimg.demo.samples import SampleData, image_bytes
from bulkimg.errors import InputFileError
from bulkimg.formats.manifest import ManifestRecord
from bulkimg.report.preview import (
    Card,
    CardSet,
    PageInfo,
    PlanRecord,
    build_card,
    card_filters,
    image_origin,
    render_page,
)
from bulkimg.report.thumbnails import ThumbnailCache, Thumbnailer, make_thumbnail
from bulkimg.run.build import run_build
from bulkimg.run.preview import render_preview
from bulkimg.s3.client import RequestCounter
from tests.helpers.env import BUCKET, CANARY_KEY_ID, CANARY_SECRET, CANARY_TOKEN
from tests.helpers.fixtures import MakeSettings
from tests.helpers.preview import (
    HOSTILE,
    hostile_page,
    media,
    page_cards,
    parse_page,
    plan_line,
    render_synthetic,
    write_jsonl,
)

REPO = Path(__file__).resolve().parents[2]
# Tags the template writes; JS creates every other element at run time, from data, as text.
TEMPLATE_TAGS = {
    *("html", "head", "meta", "title", "style", "body", "header", "div", "h1", "p", "code"),
    *("dl", "dt", "dd", "button", "span", "input", "noscript", "main", "script"),
}


# --- helpers: write inputs, read the page back ------------------------------------------------


def strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """Every string in a JSON value, with its path (e.g. `3.images.0.src`)."""
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in strings(v, f"{path}.{i}")]
    return []


# --- hostile values ------------------------------------------------------------------------------


def test_hostile_values_inject_no_element_attribute_or_script(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    _, html = hostile_page(make_settings, tmp_path)
    page = parse_page(html)
    tags = {tag for tag, _ in page.elements}
    assert tags <= TEMPLATE_TAGS, tags - TEMPLATE_TAGS
    for tag, attrs in page.elements:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert not [v for v in attrs.values() if v and "javascript:" in v.lower()], (tag, attrs)
    scripts = page.raw["script"]
    assert [a.get("type") for a, _ in scripts] == ["text/plain", None]
    assert scripts[1][1] == (REPO / "bulkimg/templates/preview.js").read_text()
    assert "alert(" not in html  # no hostile value is anywhere in the markup, even as text
    assert html.count("</script") == 2


def test_hostile_values_round_trip_exactly_through_the_embedded_json(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    _, html = hostile_page(make_settings, tmp_path)
    cards = page_cards(html)
    assert [c["title"] for c in cards] == HOSTILE
    for card, value in zip(cards, HOSTILE, strict=True):
        assert card["group_id"].startswith(value) and card["handle"] == value
        assert card["images"][0]["alt"] == card["images"][0]["image_sku"] == value
        assert card["images"][0]["s3_key"].startswith(f"sorted-media/{value}/")
        assert [v["sku"] for v in card["variants"]] == [value, f"{value}-2"]
        assert card["missing"][0]["reason"] == card["missing"][0]["detail"] == value
        assert card["rejected"][0]["reason"] == value
        assert card["failures"][0]["errors"][0] == {
            "code": value,
            "field": f"{value}.x",
            "message": value,
        }
        assert card["product_id"] == value


def test_csp_is_strict_and_allows_exactly_the_inline_script_and_style(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    _, html = hostile_page(make_settings, tmp_path)
    page = parse_page(html)
    metas = [a for t, a in page.elements if t == "meta" and a.get("http-equiv")]
    assert metas[0]["http-equiv"] == "Content-Security-Policy"
    first_code = next(i for i, (t, _) in enumerate(page.elements) if t in ("style", "script"))
    assert page.elements.index(("meta", metas[0])) < first_code
    policy = dict(d.strip().split(" ", 1) for d in (metas[0]["content"] or "").split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["base-uri"] == "'none'" and policy["form-action"] == "'none'"
    assert "connect-src" not in policy
    assert "unsafe" not in (metas[0]["content"] or "") and "*" not in (metas[0]["content"] or "")

    def sha(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    assert policy["script-src"] == sha(page.raw["script"][1][1])
    assert policy["style-src"] == sha(page.raw["style"][0][1])
    assert policy["img-src"] == f"data: https://{BUCKET}.s3.amazonaws.com"


def test_secrets_appear_only_inside_presigned_image_urls(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    _, html = hostile_page(make_settings, tmp_path)
    cards = page_cards(html)
    everything = html + orjson.dumps(cards).decode()
    for canary in (CANARY_SECRET, "canary%2Fsecret", "canary/secret"):
        assert canary not in everything
    assert CANARY_KEY_ID not in html and CANARY_TOKEN not in html
    bearing = [(p, s) for p, s in strings(cards) if CANARY_KEY_ID in s or CANARY_TOKEN in s]
    assert bearing  # the presigned URLs themselves
    for path, value in bearing:
        assert re.fullmatch(r"\.\d+\.images\.\d+\.src", path), path
        assert value.startswith("https://") and "X-Amz-Signature=" in value
    # The failures' variables (which hold presigned URLs) never reach the page.
    assert "x.example" not in everything


def test_only_http_urls_and_own_thumbnails_become_an_image_src() -> None:
    plan = PlanRecord.model_validate(plan_line("G-1"))
    for src in ("javascript:alert(1)", "data:text/html,<script>", " https://x", "vbscript:x"):
        assert build_card(plan, None, [], lambda _k, _e, s=src: s).images[0].src is None
    for src in ("https://b.s3.amazonaws.com/k?X-Amz-Signature=1", "data:image/jpeg;base64,AA=="):
        assert build_card(plan, None, [], lambda _k, _e, s=src: s).images[0].src == src
    assert image_origin("https://b.s3.amazonaws.com/k?q") == "https://b.s3.amazonaws.com"
    assert image_origin("http://127.0.0.1:9000/b/k") == "http://127.0.0.1:9000"
    for url in ("javascript://x/y", "https://u:p@host/k", "https://h; script-src */k", "ftp://h/k"):
        assert image_origin(url) is None


def test_renderer_script_builds_the_dom_from_text_only() -> None:
    script = (REPO / "bulkimg/templates/preview.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
    assert "new Function" not in script and "href" not in script
    assert "</" not in script and "</" not in (REPO / "bulkimg/templates/preview.css").read_text()


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=40))
def test_any_title_round_trips_and_stays_out_of_the_markup(title: str) -> None:
    plan = PlanRecord.model_validate(plan_line("G-1", title=title))
    info = PageInfo(datetime.now(UTC), "output/plan.jsonl", None, "", [])
    html = render_page(CardSet.of([build_card(plan, None, [], lambda _k, _e: None)]), info)
    assert page_cards(html)[0]["title"] == title
    assert {t for t, _ in parse_page(html).elements} <= TEMPLATE_TAGS


# --- what the cards say -----------------------------------------------------------------------


def outcome_inputs(out: Path) -> None:
    keys = [f"sorted-media/82/00/20/820020-{n}a-1.jpg" for n in (1, 2)]
    two_images = [media(keys[0], 1), media(keys[1], 2)]
    write_jsonl(
        out / "plan.jsonl",
        [
            plan_line(
                "DONE-1",
                media=two_images,
                variants=[
                    {"sku": "v1", "image_sku": "820020", "image_s3_key": keys[0]},
                    {"sku": "v2", "image_sku": "820020", "image_s3_key": keys[0]},
                ],
            ),
            plan_line("FAILED-1"),
            plan_line(
                "MISSING-1",
                media=[],
                variants=[{"sku": "m1", "image_sku": "799057", "image_s3_key": None}],
                missing=[{"sku": "m1", "image_sku": "799057", "reason": "No images found in S3"}],
            ),
            plan_line("SAME-1", status="unchanged"),
            plan_line("LATER-1", status="deferred", deferred_reason="S3 could not be read"),
        ],
    )
    write_jsonl(
        out / "manifest.jsonl",
        [
            {
                "group_id": "DONE-1",
                "product_id": "gid://shopify/Product/1",
                "handle": "done-1",
                "status": "done",
                "media": [
                    {"id": "m1", "s3_key": keys[0], "etag": "e", "status": "READY"},
                    {"id": "m2", "s3_key": keys[1], "etag": "e", "status": "PROCESSING"},
                ],
                "variants": [
                    {"sku": "v1", "id": "1", "media_id": "m1", "s3_key": keys[0]},
                    {"sku": "v2", "id": "2", "media_id": "m2", "s3_key": keys[1]},
                ],
            },
            {"group_id": "FAILED-1", "handle": "failed-1", "status": "failed"},
            {"group_id": "MISSING-1", "handle": "missing-1", "status": "missing"},
        ],
    )
    write_jsonl(
        out / "failures.jsonl",
        [
            {
                "phase": "product_set",
                "group_id": "FAILED-1",
                "handle": "failed-1",
                "file": "productset.jsonl",
                "line": 2,
                "variables": {"fileIds": ["gid://shopify/MediaImage/1"]},
                "errors": [{"code": "INVALID", "field": ["input", "files"], "message": "bad"}],
                "retryable": True,
            },
            {"phase": "variant_media", "group_id": "GONE", "handle": "", "retryable": False},
        ],
    )


def test_cards_show_outcome_media_status_and_which_image_each_variant_got(
    make_settings: MakeSettings,
) -> None:
    settings = make_settings(aws_s3_bucket="")
    outcome_inputs(settings.output_dir)
    result = render_preview(settings)
    html = result.path.read_text()
    cards = {c["group_id"]: c for c in page_cards(html)}
    done = cards["DONE-1"]
    assert done["outcome"] == "done" and done["product_id"] == "gid://shopify/Product/1"
    assert [i["media_status"] for i in done["images"]] == ["READY", "PROCESSING"]
    assert [i["label"] for i in done["images"]] == ["1a", "2a"]
    # v1 got the image it should show; v2 was attached to image 2 instead of 1.
    assert [(v["image"], v["attached"]) for v in done["variants"]] == [(1, 1), (1, 2)]
    assert cards["FAILED-1"]["failures"] == [
        {
            "phase": "product_set",
            "retryable": True,
            "errors": [{"code": "INVALID", "field": "input.files", "message": "bad"}],
        }
    ]
    assert {g: c["filters"] for g, c in cards.items()} == {
        "DONE-1": ["all", "changed"],
        "FAILED-1": ["all", "changed", "failed"],
        "MISSING-1": ["all", "changed", "missing"],
        "SAME-1": ["all", "unchanged"],
        "LATER-1": ["all", "unchanged"],
    }
    assert "1 group is in the manifest or failures but not in the plan." in html
    assert "output/manifest.jsonl" in html
    assert "no S3 settings" in html


def test_summary_counts_and_filter_counts_are_in_the_page(make_settings: MakeSettings) -> None:
    settings = make_settings(aws_s3_bucket="")
    outcome_inputs(settings.output_dir)
    html = render_preview(settings).path.read_text()
    counts = dict(re.findall(r'data-filter="(\w+)"[^>]*>\s*[^<]*<span class="count">(\d+)', html))
    assert counts == {"all": "5", "changed": "3", "failed": "1", "missing": "1", "unchanged": "2"}
    summary = dict(re.findall(r"<dt>([^<]+)</dt><dd>(\d+)</dd>", html))
    assert summary["groups"] == "5" and summary["done"] == "1" and summary["failed"] == "1"
    assert summary["deferred"] == "1" and summary["variants without image"] == "1"


def test_a_failed_media_marks_the_card_failed() -> None:
    plan = PlanRecord.model_validate(plan_line("G-1"))
    key = plan.media[0].s3_key
    manifest = ManifestRecord.model_validate(
        {
            "group_id": "G-1",
            "handle": "g-1",
            "status": "done",
            "media": [{"s3_key": key, "status": "FAILED"}],
        }
    )
    card: Card = build_card(plan, manifest, [], lambda _k, _e: None)
    assert "failed" in card_filters(card)


def test_manifest_older_than_the_plan_is_flagged(make_settings: MakeSettings) -> None:
    settings = make_settings(aws_s3_bucket="")
    outcome_inputs(settings.output_dir)
    plan = settings.output_dir / "plan.jsonl"
    manifest = settings.output_dir / "manifest.jsonl"
    os.utime(manifest, (plan.stat().st_mtime - 60, plan.stat().st_mtime - 60))
    assert "outcomes are from an earlier run" in render_preview(settings).path.read_text()


def test_plan_alone_renders_and_says_not_submitted(make_settings: MakeSettings) -> None:
    settings = make_settings(aws_s3_bucket="")
    write_jsonl(settings.output_dir / "plan.jsonl", [plan_line("G-1")])
    html = render_preview(settings).path.read_text()
    assert "not submitted yet" in html
    assert page_cards(html)[0]["outcome"] is None


def test_bad_input_lines_name_the_file_and_line(make_settings: MakeSettings) -> None:
    settings = make_settings(aws_s3_bucket="")
    with pytest.raises(InputFileError, match="run `bulkimg build` first"):
        render_preview(settings)
    write_jsonl(settings.output_dir / "plan.jsonl", [plan_line("G-1")])
    (settings.output_dir / "manifest.jsonl").write_text('{"group_id": "G-1"}\n{oops\n')
    with pytest.raises(InputFileError, match=r"manifest\.jsonl:1: not a ManifestRecord"):
        render_preview(settings)
    assert not (settings.output_dir / "preview.html").exists()


# --- S3: presigned URLs cost no request; thumbnails one GET per new image -------------------------


@pytest.fixture
def built(s3: S3Client, make_settings: MakeSettings, tmp_path: Path, sample: SampleData) -> Any:
    sample.upload(s3, BUCKET)

    def build(**overrides: Any) -> Any:
        settings = make_settings(catalog=str(sample.write_csv(tmp_path / "c.csv")), **overrides)
        return settings, run_build(settings, None, s3_client=s3).report

    return build


def media_keys(settings: Any) -> set[str]:
    plans = (settings.output_dir / "plan.jsonl").read_bytes().splitlines()
    return {m["s3_key"] for line in plans for m in orjson.loads(line)["media"]}


def test_build_writes_the_preview_with_its_urls_and_no_extra_request(
    built: Any, s3: S3Client
) -> None:
    settings, report = built()
    assert report.preview_file == str(settings.output_dir / "preview.html")
    assert report.thumbnail_gets == 0
    cards = page_cards(Path(report.preview_file).read_text())
    srcs = [i["src"] for c in cards for i in c["images"]]
    assert len(srcs) == len(media_keys(settings)) and all("Signature=" in s for s in srcs)
    # The page shows the very URLs the productSet lines give Shopify (made once).
    lines = (settings.output_dir / "productset.jsonl").read_text()
    assert all(s in lines for s in srcs)
    counter = RequestCounter()
    counter.attach(s3)
    render_preview(settings, s3_client=s3)
    assert counter.total == 0
    assert not (settings.cache_dir / "thumbnails.sqlite").exists()


def test_without_credentials_images_are_placeholders_and_the_page_says_why(
    make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    settings = make_settings(
        aws_access_key_id=None, aws_secret_access_key=None, aws_session_token=None
    )
    write_jsonl(settings.output_dir / "plan.jsonl", [plan_line("G-1"), plan_line("G-2")])
    result = render_preview(settings)
    assert result.images == {"none": 2}
    assert "2 images show a placeholder (no S3 credentials were found)" in result.path.read_text()


def test_thumbnails_cost_one_get_per_new_image_and_outlive_the_urls(
    built: Any, make_settings: MakeSettings
) -> None:
    settings, first = built(preview_thumbnails=True)
    keys = media_keys(settings)
    assert first.thumbnail_gets == len(keys)
    _, second = built(preview_thumbnails=True)
    assert second.thumbnail_gets == 0
    # Without S3 settings the cached thumbnails are still embedded.
    offline = make_settings(aws_s3_bucket="")
    result = render_preview(offline)
    srcs = [i["src"] for c in page_cards(result.path.read_text()) for i in c["images"]]
    assert len(srcs) == len(keys) and all(s.startswith("data:image/jpeg;base64,") for s in srcs)
    assert result.thumbnail_gets == 0 and result.images == {"embedded": len(keys)}


def test_changed_file_gets_no_thumbnail_under_its_old_etag(
    s3: S3Client, make_settings: MakeSettings, tmp_path: Path
) -> None:
    key = "sorted-media/82/00/20/820020-1a-1.jpg"
    s3.put_object(Bucket=BUCKET, Key=key, Body=image_bytes("jpg", 400, 400))
    cache = ThumbnailCache(tmp_path / "thumbs.sqlite")
    thumbnailer = Thumbnailer(cache, BUCKET, s3)
    thumbnailer.prepare([(key, "0" * 32)])
    assert (thumbnailer.gets, thumbnailer.failed) == (1, 1)
    assert thumbnailer.data_uri(key, "0" * 32) is None
    etag = s3.head_object(Bucket=BUCKET, Key=key)["ETag"].strip('"')
    thumbnailer.prepare([(key, etag), (key, etag)])
    assert thumbnailer.gets == 2 and (thumbnailer.data_uri(key, etag) or "").startswith("data:")
    cache.close()


def test_thumbnail_is_a_small_jpeg_with_transparency_on_white() -> None:
    image = Image.new("RGBA", (800, 400), (0, 0, 0, 0))
    png = io.BytesIO()
    image.save(png, "PNG")
    thumb = make_thumbnail(png.getvalue())
    assert thumb is not None
    with Image.open(io.BytesIO(thumb)) as small:
        assert small.format == "JPEG" and small.size == (160, 80)
        assert small.getpixel((5, 5)) == (255, 255, 255)
    assert make_thumbnail(b"not an image") is None


def test_preview_is_all_or_nothing_with_the_build(
    built: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("template broke")

    monkeypatch.setattr("bulkimg.run.build.write_preview", broken)
    with pytest.raises(RuntimeError):
        built()
    assert not list((Path.cwd() / "output").glob("*"))


# --- scale -----------------------------------------------------------------------------------


def test_twenty_thousand_groups_render_into_a_small_file(make_settings: MakeSettings) -> None:
    settings = make_settings(aws_session_token="")
    (settings.output_dir).mkdir(parents=True)
    result, seconds = render_synthetic(settings, 20_000)
    print(f"20,000 groups: {result.bytes:,} bytes in {seconds:.2f} s")
    assert result.images == {"url": 60_000}
    assert result.bytes < 8_000_000  # ~5.5 MB (docs/performance.md)


# --- the command -----------------------------------------------------------------------------


def test_preview_command_writes_and_opens_the_page(
    make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_jsonl(Path("output/plan.jsonl"), [plan_line("G-1")])
    opened: list[str] = []
    monkeypatch.setattr("click.launch", lambda url, **_: opened.append(url))
    result = CliRunner().invoke(cli, ["preview", "--open"])
    assert result.exit_code == 0, result.output
    assert "wrote output/preview.html (1 groups" in result.output
    assert opened == ["output/preview.html"]
