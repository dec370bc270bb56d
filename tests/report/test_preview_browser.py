"""The preview page in a real browser: Debian's headless Chromium driven by Playwright.

Skips without Chromium or Playwright (fails under CI=true). `BULKIMG_UPDATE_SCREENSHOT=1` saves
the screenshot README shows (docs/preview.png).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from bulkimg.demo.run import LocalS3
from bulkimg.demo.samples import SampleData
from bulkimg.run.build import run_build
from bulkimg.run.preview import render_preview
from tests.helpers.env import skip_or_fail
from tests.helpers.fixtures import MakeSettings
from tests.helpers.preview import hostile_page, page_cards, render_synthetic, write_jsonl

pytestmark = pytest.mark.slow  # every test drives Chromium

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("BULKIMG_TEST_CHROMIUM", "/usr/bin/chromium"))
# Read at import: the autouse fixture clears BULKIMG_* variables before each test.
UPDATE_SCREENSHOT = os.environ.get("BULKIMG_UPDATE_SCREENSHOT") == "1"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FAILED_GROUP = "LGD-101792"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("Python playwright is not installed (pip install -e '.[dev]')")
    if not shutil.which(str(CHROMIUM)):
        skip_or_fail(f"{CHROMIUM} not found (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Page:
    """A page opened from disk, with every request and console message it made."""

    def __init__(self, browser: Any, path: Path, allowed_prefix: str | None) -> None:
        self.url = path.resolve().as_uri()
        self.requests: list[tuple[str, str]] = []
        self.console: list[str] = []
        self.dialogs: list[str] = []
        self.context = browser.new_context(viewport={"width": 1200, "height": 800})
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append((r.url, r.resource_type)))
        self.page.on("console", lambda m: self.console.append(m.text))
        self.page.on("pageerror", lambda e: self.console.append(f"error: {e}"))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

        def only_images(route: Any) -> None:
            url = route.request.url
            if url == self.url or (allowed_prefix and url.startswith(allowed_prefix)):
                route.continue_()
            else:
                route.abort()

        self.page.route("**/*", only_images)
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready=true]", timeout=30_000)

    def close(self) -> None:
        self.context.close()

    def shown(self) -> list[str]:
        groups: list[str] = self.page.eval_on_selector_all(
            "article.card", "cards => cards.map(c => c.dataset.group)"
        )
        return groups

    def filter(self, name: str) -> None:
        self.page.click(f"button[data-filter={name}]")

    def wait_until(self, function: str, arg: Any = None, timeout: float = 15) -> None:
        """Poll `function(arg)` from outside the page (wait_for_function would need eval,
        which the page's CSP rightly refuses)."""
        deadline = time.monotonic() + timeout
        while not self.page.evaluate(function, arg):
            assert time.monotonic() < deadline, f"still false after {timeout} s: {function}"
            time.sleep(0.05)


def mark_one_failed(out: Path) -> None:
    """A manifest and failures as submit writes them: every group done, one failed."""
    plans = [orjson.loads(x) for x in (out / "plan.jsonl").read_bytes().splitlines()]
    manifest = []
    for plan in plans:
        failed = plan["group_id"] == FAILED_GROUP
        manifest.append(
            {
                "group_id": plan["group_id"],
                "product_id": f"gid://shopify/Product/{len(manifest) + 1}",
                "handle": plan["handle"],
                "status": "failed" if failed else "done",
                "media": [
                    {"id": f"m{m['position']}", "s3_key": m["s3_key"], "status": "READY"}
                    for m in ([] if failed else plan["media"])
                ],
                "variants": [
                    {"sku": v["sku"], "id": v["sku"], "media_id": "m1", "s3_key": v["image_s3_key"]}
                    for v in ([] if failed else plan["variants"])
                    if v["image_s3_key"]
                ],
            }
        )
    write_jsonl(out / "manifest.jsonl", manifest)
    failure = {
        "phase": "product_set",
        "group_id": FAILED_GROUP,
        "handle": FAILED_GROUP.lower(),
        "file": "productset.jsonl",
        "line": 1,
        "variables": {},
        "errors": [{"code": "INVALID", "field": ["input", "files"], "message": "Image too big"}],
        "retryable": False,
    }
    write_jsonl(out / "failures.jsonl", [failure])


@pytest.fixture
def demo_page(
    browser: Any,
    s3_server: LocalS3,
    sample: SampleData,
    make_settings: MakeSettings,
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[Page, str]]:
    """The demo's catalog built against moto's S3 server, one group failed, open in Chromium."""
    bucket = "preview-" + request.node.name.replace("_", "-").lower()[:40]
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    sample.upload(client, bucket)
    settings = make_settings(
        catalog=str(sample.write_csv(tmp_path / "catalog.csv")),
        aws_s3_bucket=bucket,
        aws_endpoint_url_s3=s3_server.endpoint_url,
        output_dir=Path("output"),  # relative, as users run it (the page shows the paths)
    )
    run_build(settings)
    mark_one_failed(settings.output_dir)
    result = render_preview(settings)
    page = Page(browser, result.path, f"{s3_server.endpoint_url}/{bucket}/")
    yield page, s3_server.endpoint_url
    page.close()


def test_demo_page_shows_cards_featured_image_variant_image_and_failed_card(
    demo_page: tuple[Page, str],
) -> None:
    view, _ = demo_page
    page = view.page
    assert len(view.shown()) == 28  # every demo group fits the first batch of cards
    card = page.locator(f'article[data-group="{FAILED_GROUP}"]')
    assert card.is_visible()
    featured = card.locator("li.tile.featured")
    assert featured.locator(".featured-mark").inner_text() == "★ featured"
    image = featured.locator("img.thumb")
    image.scroll_into_view_if_needed()
    view.wait_until("img => img.complete && img.naturalWidth > 0", image.element_handle())
    # A variant shows its image highlighted, in its row and in the product's images.
    row = card.locator("li.variant").first
    assert row.locator(".shows.highlight img.mini").is_visible()
    row.hover()
    assert "highlight" in (featured.get_attribute("class") or "")
    # The failed card says why and whether retrying helps.
    assert "is-failed" in (card.get_attribute("class") or "")
    assert "INVALID input.files: Image too big" in card.locator(".failures").inner_text()
    assert "retrying will not help" in card.inner_text()
    # Missing images are shown in place, with the log's reason.
    assert "No Image_SKU in catalog" in card.locator("li.tile.missing").inner_text()
    assert not [m for m in view.console if "Content Security Policy" in m or m.startswith("error")]
    if UPDATE_SCREENSHOT:  # the failed card under the summary bar, a variant hovered
        page.evaluate(
            "card => window.scrollTo(0, card.offsetTop - document.querySelector('.top')"
            ".offsetHeight - 12)",
            card.element_handle(),
        )
        row.hover()
        page.wait_for_timeout(300)
        page.screenshot(path=str(REPO / "docs" / "preview.png"))


def test_filters_and_search_change_what_is_shown(demo_page: tuple[Page, str]) -> None:
    view, _ = demo_page
    everything = view.shown()
    view.filter("failed")
    assert view.shown() == [FAILED_GROUP]
    view.filter("missing")
    assert set(view.shown()) == {"GID-100288", "GID-100999", "LGD-100040", FAILED_GROUP}
    view.filter("unchanged")
    assert view.shown() == [] and view.page.locator("text=No group matches.").is_visible()
    view.filter("changed")
    assert view.shown() == everything
    view.filter("all")
    view.page.fill("#search", "1102192")  # an Image_SKU
    assert view.shown() == [FAILED_GROUP]
    view.page.fill("#search", "800062")  # a variant SKU
    assert view.shown() == ["GID-100288"]
    view.page.fill("#search", "lgd-1017")  # a group id, any case
    assert view.shown() == [FAILED_GROUP]
    assert "showing 1 of 1 matching groups" in view.page.inner_text("#shown")
    view.page.fill("#search", "")
    assert view.shown() == everything


def test_page_requests_nothing_but_image_urls_from_the_s3_endpoint(
    demo_page: tuple[Page, str],
) -> None:
    view, endpoint = demo_page
    view.page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    view.page.wait_for_load_state("networkidle")
    others = [(u, t) for u, t in view.requests if u != view.url]
    assert others, "the thumbnails were not requested"
    for url, kind in others:
        assert url.startswith(endpoint + "/") and kind == "image", (url, kind)


def test_hostile_values_render_as_text_and_run_nothing(
    browser: Any, make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings, _ = hostile_page(make_settings, tmp_path)
    view = Page(browser, settings.output_dir / "preview.html", None)
    try:
        cards = page_cards((settings.output_dir / "preview.html").read_text())
        titles = view.page.eval_on_selector_all(".card .title", "ts => ts.map(t => t.textContent)")
        assert titles == [c["title"] for c in cards]
        rejected = view.page.locator("details.rejected").first
        rejected.click()
        assert cards[0]["rejected"][0]["s3_key"] in rejected.inner_text()
        srcs = view.page.eval_on_selector_all("img", "imgs => imgs.map(i => i.src)")
        assert srcs and all(s.startswith("https://") for s in srcs)
        assert view.page.locator("script").count() == 2
        assert view.page.evaluate("document.querySelectorAll('[onerror], a, iframe').length") == 0
        assert view.dialogs == []
        assert not [m for m in view.console if "Content Security Policy" in m]
    finally:
        view.close()


def test_twenty_thousand_groups_open_page_through_and_filter(
    browser: Any, make_settings: MakeSettings
) -> None:
    settings = make_settings()
    settings.output_dir.mkdir(parents=True)
    result, _ = render_synthetic(settings, 20_000)
    view = Page(browser, result.path, None)  # images blocked: only the page is measured
    try:
        # Timings are for docs/performance.md, measured by hand: a unit test asserts behaviour only.
        assert len(view.shown()) == 50
        view.page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        view.wait_until("() => document.querySelectorAll('article.card').length > 50")
        view.page.fill("#search", "900123")
        assert view.shown() == ["LGD-100041"]
    finally:
        view.close()


def test_cards_say_what_the_next_submit_would_do_after_plan_against_shop(
    browser: Any, make_settings: MakeSettings
) -> None:
    from bulkimg.formats.resolution import CHECK_RESOLUTION, ResolvedGroup
    from tests.helpers.preview import plan_line

    settings = make_settings(aws_s3_bucket="")
    out = settings.output_dir
    write_jsonl(out / "plan.jsonl", [plan_line("G-1"), plan_line("G-2")])
    changes = ResolvedGroup(group_id="G-1", handle="g-1", action="update", match="sku",
                            product_id="gid://shopify/Product/7", adopted=2, uploaded=1,
                            variant_images_swapped=1)  # fmt: skip
    same = ResolvedGroup(group_id="G-2", handle="g-2", action="unchanged", match="handle")
    write_jsonl(out / CHECK_RESOLUTION, [changes.model_dump(), same.model_dump()])
    page = Page(browser, render_preview(settings).path, None)
    try:
        line = page.page.locator('article[data-group="G-1"] .against-shop').inner_text().lower()
        assert "changes images" in line and "found by sku" in line
        assert "adopt 2" in line and "upload 1" in line and "variant images swapped 1" in line
        assert (
            "nothing to send" in page.page.locator('article[data-group="G-2"]').inner_text().lower()
        )
        page.filter("shop")
        assert page.shown() == ["G-1"]
        assert (
            "the next submit, against the shop" in page.page.locator("#shop-summary").inner_text()
        )
    finally:
        page.close()
