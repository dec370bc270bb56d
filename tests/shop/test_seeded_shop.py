"""bulkimg against a shop that is not empty: seeded as the users' existing workflow left it.

moto's S3 server and the sandbox shop over loopback, as in test_submit.py and test_nightly.py.
On every product that already exists, bulkimg may change images (media, variant images) and
nothing else; no merchant photo or hand-set variant image may be lost, no S3 file may end up on a
product twice, a product a merchant renamed must be found by its SKUs; the second night sends
nothing. An out-of-date copy of an S3 image that a variant showed may be replaced by the new
version of the same file, which the variant then shows.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from bulkimg.cli import main
from bulkimg.config import Settings
from bulkimg.demo.run import LocalS3
from bulkimg.formats.run import Phase, RunStore
from bulkimg.run.nightly import NightlyRun, reconcile, run_nightly
from bulkimg.run.preview import render_preview
from bulkimg.sandbox import FaultRule, SandboxShop
from bulkimg.sandbox.seed import LIFESTYLE_ALT, images_from_objects, seed_existing_catalog
from bulkimg.sandbox.snapshot import (
    MEDIA_FIELDS,
    ProductSnap,
    ShopSnapshot,
    diff,
    s3_file_of,
    snapshot,
)
from bulkimg.shopify.client import client_from_settings
from tests.helpers.env import CANARY_KEY_ID, CANARY_SECRET, SHOP_TOKEN
from tests.helpers.files import read_jsonl
from tests.helpers.fixtures import ImageUrl
from tests.helpers.preview import page_cards
from tests.helpers.sandbox import wait_for
from tests.helpers.shop import (
    SEED_NUMBER,
    SEED_OPTIONS,
    SeededShop,
    graphql,
    mutation_operations,
    reorders_done,
    retry,
    sample_groups,
    sent_groups,
    sent_lines,
    submit,
)

pytestmark = pytest.mark.slow
# The tests read products back often; cost-based throttling is tested in test_submit.py.
fast_shop = pytest.mark.parametrize(
    "shop", [{"throttle_bucket_size": 1e6, "throttle_restore_rate": 1e6}], indirect=True
)


# --- what a real shop must never suffer -------------------------------------------------------


def harm(seeded: SeededShop, after: ShopSnapshot) -> list[str]:
    """Everything bulkimg did to the seeded shop beyond its images, one line each."""
    before = seeded.seeded
    found = [
        str(change)
        for change in diff(before, after)
        if change.field not in MEDIA_FIELDS
        and not (change.field == "product" and change.before == "absent")
    ]
    for product in before.products.values():
        now = after.products.get(product.id)
        if now is None:
            continue
        kept = now.media_by_id()
        for media in product.media:
            if s3_file_of(media.filename) is None and media.id not in kept:
                found.append(f"{product.handle}: merchant's {media.filename} lost")
        links = {v.id: v.media_id for v in now.variants}
        old_file = {m.id: s3_file_of(m.filename) for m in product.media}
        new_file = {m.id: s3_file_of(m.filename) for m in now.media}
        for variant in product.variants:
            shown = links.get(variant.id)
            if variant.media_id is None or shown == variant.media_id:
                continue
            # bulkimg's (or the old workflow's) out-of-date copy, replaced by the new version
            # of the same S3 file: the variant shows that image again. One of bulkimg's images
            # of another Image_SKU: the variant shows an image of its own set now
            # (shop/variantimages.py). A pick within its own image set, or a merchant's photo,
            # stays.
            was, now_shows = old_file.get(variant.media_id), new_file.get(shown)
            if (
                was
                and now_shows
                and (was == now_shows or image_sku_of(was) != image_sku_of(now_shows))
            ):
                continue
            found.append(f"{product.handle}: hand-set image of {variant.sku} lost")
    found.extend(twice(after))
    created = [p.handle for p in after.products.values() if p.id not in before.products]
    found.extend(f"{handle}: created on a shop that has every catalog group" for handle in created)
    return found


def image_sku_of(s3_file: str) -> str:
    """The Image_SKU an S3 file name (`<Image_SKU>-<N>a-<digits>.<ext>`) is an image of."""
    return s3_file.rsplit("-", 2)[0]


def twice(after: ShopSnapshot) -> list[str]:
    """Products on which one S3 file is more than one media."""
    found = []
    for product in after.products.values():
        copies = Counter(s3_file_of(m.filename) for m in product.media)
        copies.pop(None, None)
        found.extend(f"{product.handle}: {name} {n} times" for name, n in copies.items() if n > 1)
    return found


def untouched(seeded: SeededShop, after: ShopSnapshot, handles: Any) -> list[str]:
    """Changes of any kind to the products ``handles`` (e.g. other departments')."""
    ids = {p.id for p in seeded.seeded.products.values() if p.handle in set(handles)}
    return [str(c) for c in diff(seeded.seeded, after) if c.product_id in ids]


def night(settings: Settings) -> NightlyRun:
    with client_from_settings(settings) as client:
        return run_nightly(settings, client)


def sent(settings: Settings) -> int:
    """productSet lines the last run sent (resolved against the shop)."""
    return len(sent_lines(settings.output_dir))


# --- the seeded shop itself ----------------------------------------------------------------

PRODUCT_ID = """query($handle: String!) { productByIdentifier(identifier: {handle: $handle}) {
  id } }"""
PRODUCTS = """{ products(first: 50) { nodes { handle title status descriptionHtml tags
  options { name values } metafield(namespace: "custom", key: "stone") { value type }
  metafields(first: 5) { nodes { namespace key value } } } } }"""
PRODUCT = """query($handle: String!) { productByIdentifier(identifier: {handle: $handle}) {
  media(first: 20) { nodes { alt ... on MediaImage { image { url width height } } } }
  variants(first: 20) { nodes { sku price compareAtPrice barcode inventoryQuantity
    selectedOptions { name value } } } } }"""


@fast_shop
def test_seeded_shop_looks_like_the_existing_workflow_left_it(seeded_shop: SeededShop) -> None:
    report, seeded = seeded_shop.report, seeded_shop.seeded
    products = graphql(seeded_shop.url, PRODUCTS)["products"]["nodes"]
    assert len(products) == report.products == len(report.handles) + len(report.foreign_products)
    by_handle = {p["handle"]: p for p in products}
    assert set(report.handles.values()) | set(report.foreign_products) == set(by_handle)
    assert report.renamed and all(h != g.lower() for g, h in report.renamed.items())
    assert report.retitled and report.stale and report.partial and report.hand_set_variant_images
    names = [o["name"] for p in products for o in p["options"]]
    assert "SKU" not in names and {"Metal", "Title"} <= set(names)
    assert {p["status"] for p in products} == {"ACTIVE", "DRAFT"}
    assert all(p["descriptionHtml"].startswith("<p>") and p["tags"] for p in products)
    assert all(p["metafield"]["type"] == "single_line_text_field" for p in products)
    assert all(p["metafields"]["nodes"][0]["key"] == "stone" for p in products)
    variants = [v for p in seeded.products.values() for v in p.variants]
    assert all(float(v.price) >= 499 and len(v.barcode or "") == 12 for v in variants)
    assert any(v.compare_at_price for v in variants) and any(v.inventory_quantity for v in variants)
    assert any(m.alt == LIFESTYLE_ALT for p in seeded.products.values() for m in p.media)

    solitaire = graphql(seeded_shop.url, PRODUCT, {"handle": report.handles["LGD-101792"]})
    product = solitaire["productByIdentifier"]
    assert [v["sku"] for v in product["variants"]["nodes"]] == ["800059", "800060", "800061"]
    assert all(v["inventoryQuantity"] is not None for v in product["variants"]["nodes"])
    catalog = [m for m in product["media"]["nodes"] if m["alt"] != LIFESTYLE_ALT]
    # 2a-200.jpg is superseded by 2a-201.png; file names are the S3 file names.
    files = ["1102192-1a-100.jpg", "1102192-2a-201.png", "1102192-10a-300.gif"][: len(catalog)]
    assert [m["image"]["url"].split("/")[-1].split("?")[0] for m in catalog] == files
    assert [m["alt"] for m in catalog] == [f"1102192 - Image {n}" for n in (1, 2, 10)][: len(files)]


def test_the_same_seed_seeds_the_same_shop(sample: Any) -> None:
    groups, images = sample_groups(sample), images_from_objects(sample.objects)

    def seeded(number: int) -> list[Any]:
        with SandboxShop() as shop:
            seed_existing_catalog(shop, groups, images, seed=number, options=SEED_OPTIONS)
            products = snapshot(shop).products.values()
            first = min(products, key=lambda p: p.id).id
            return [
                (p.id - first, p.handle, p.title, p.status, p.options, p.metafields,
                 [(v.sku, v.price, v.barcode, v.inventory_quantity) for v in p.variants],
                 [(m.filename, m.alt, m.width, m.position) for m in p.media])
                for p in products
            ]  # fmt: skip

    assert seeded(SEED_NUMBER) == seeded(SEED_NUMBER)
    assert seeded(SEED_NUMBER) != seeded(SEED_NUMBER + 1)


def test_sandbox_seed_command_fills_a_state_file(
    s3_server: LocalS3,
    bucket: str,
    sample: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    state = tmp_path / "seeded.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BULKIMG_"))}
    env |= {
        "AWS_ENDPOINT_URL_S3": s3_server.endpoint_url,
        "AWS_ACCESS_KEY_ID": CANARY_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": CANARY_SECRET,
        "AWS_REGION": "us-east-1",
    }
    catalog = sample.write_csv(tmp_path / "nav_items.csv")
    command = [sys.executable, "-m", "bulkimg", "sandbox", "seed", "--scenario",
               "existing-catalog", "--catalog", str(catalog), "--bucket", bucket,
               "--state", str(state), "--seed", "5"]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith("seeded 31 products (3 not in the catalog,")
    with SandboxShop(state) as shop:
        seeded = snapshot(shop)
    assert len(seeded.products) == 31
    assert sum(len(p.media) for p in seeded.products.values()) == int(
        line.split(" media")[0].split()[-1]
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_:
        main(command[3:])
    assert exit_.value.code == 2
    assert "already holds 31 products: seed a new file" in capsys.readouterr().err


# --- bulkimg's flows on the seeded shop ------------------------------------------------------


@fast_shop
def test_submit_leaves_other_departments_alone_and_puts_no_image_on_a_product_twice(
    seeded_shop: SeededShop, settings: Settings
) -> None:
    submit(settings)
    after = snapshot(seeded_shop.shop)
    assert untouched(seeded_shop, after, seeded_shop.report.foreign_products) == []
    assert twice(after) == []


@fast_shop
def test_build_and_submit_change_only_images(seeded_shop: SeededShop, settings: Settings) -> None:
    outcome = submit(settings)
    assert (outcome.exit_code, harm(seeded_shop, snapshot(seeded_shop.shop))) == (0, [])


@fast_shop
def test_retry_changes_only_images(seeded_shop: SeededShop, settings: Settings) -> None:
    # An image the run uploads (an out-of-date copy is replaced); the others are adopted.
    stale = seeded_shop.report.stale[0].rsplit("/", 1)[-1]
    seeded_shop.shop.faults.add(FaultRule("media_fetch", status=404, url_contains=stale))
    first = submit(settings)
    assert first.exit_code == 1 and read_jsonl(settings.output_dir / "failures.jsonl")
    seeded_shop.shop.faults.clear()
    retried = retry(settings)
    assert retried.exit_code == 0
    assert harm(seeded_shop, snapshot(seeded_shop.shop)) == []


@fast_shop
def test_nightly_runs_change_only_images(seeded_shop: SeededShop, settings: Settings) -> None:
    settings.state_file.unlink(missing_ok=True)
    first_night = night(settings)
    exit_codes = [first_night.exit_code]
    reorders_done(seeded_shop.shop)  # bulkimg's images put first again, asynchronously
    first = snapshot(seeded_shop.shop)
    operations = len(mutation_operations(seeded_shop.url))
    second = night(settings)
    exit_codes.append(second.exit_code)
    # The old workflow's uploads are adopted, not sent again; the merchants' photos are counted.
    report = first_night.report
    assert report.images_adopted > 0 and report.images_kept_foreign > 0
    assert report.images_uploaded < sum(len(p.media) for p in seeded_shop.seeded.products.values())
    assert second.report.images_uploaded == 0
    second_night = {
        "lines sent": sent(settings),
        "operations run": len(mutation_operations(seeded_shop.url)) - operations,
        "changes": [str(change) for change in diff(first, snapshot(seeded_shop.shop))],
    }
    # Everything at once: the failure shows each way a real shop would suffer.
    assert (exit_codes, harm(seeded_shop, first), second_night) == (
        [0, 0],
        [],
        {"lines sent": 0, "operations run": 0, "changes": []},
    )


@fast_shop
def test_reconcile_then_run_changes_only_images(
    seeded_shop: SeededShop, settings: Settings
) -> None:
    with client_from_settings(settings) as client:
        counts = reconcile(settings, client)
    assert counts["products"] == len(seeded_shop.seeded.products)
    exit_code = night(settings).exit_code
    assert (exit_code, harm(seeded_shop, snapshot(seeded_shop.shop))) == (0, [])


@fast_shop
def test_run_after_the_state_file_is_lost_changes_only_images(
    seeded_shop: SeededShop, settings: Settings
) -> None:
    exit_codes = [night(settings).exit_code]
    settings.state_file.unlink()
    exit_codes.append(night(settings).exit_code)
    assert (exit_codes, harm(seeded_shop, snapshot(seeded_shop.shop))) == ([0, 0], [])


# --- the same checks on an empty shop (what test_nightly.py does not already assert) ----------


@fast_shop
def test_on_an_empty_shop_no_image_is_sent_twice_and_the_next_night_changes_nothing(
    shop: SandboxShop, settings: Settings
) -> None:
    assert submit(settings).exit_code == 0
    first = snapshot(shop)
    assert twice(first) == []
    assert len(first.products) == len(read_jsonl(settings.output_dir / "plan.jsonl"))
    settings.state_file.unlink(missing_ok=True)  # the night rebuilds it from the shop
    assert night(settings).exit_code == 0
    assert diff(first, snapshot(shop)) == []


def test_demo_on_an_existing_shop_ends_with_what_changed(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BULKIMG_"))}
    result = subprocess.run(
        [sys.executable, "-m", "bulkimg", "demo", "--existing-shop"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Existing shop: seeded 31 products" in " ".join(result.stderr.split())
    out = result.stdout.splitlines()
    start = out.index("What changed on the shop (products, field by field):")
    changed = out[start + 1 : out.index(next(x for x in out if x.startswith("groups: ")))]
    assert changed[-1].lstrip().split(" products changed: ")[0].isdigit()
    assert len(changed) > 1 and all(": " in line for line in changed)


# --- see it before it happens ------------------------------------------------------------------


@fast_shop
def test_plan_against_the_shop_shows_each_change_and_changes_nothing(
    seeded_shop: SeededShop, settings: Settings
) -> None:
    from bulkimg.run.against_shop import check_against_shop

    with client_from_settings(settings) as client:
        check = check_against_shop(settings, client)
    assert check.problems == []
    assert diff(seeded_shop.seeded, snapshot(seeded_shop.shop)) == []
    assert mutation_operations(seeded_shop.url) == []  # one bulk query, no mutation
    groups = {g.group_id: g for g in check.groups}
    assert all(groups[g].match == "sku" for g in seeded_shop.report.renamed if g in groups)
    assert {g.action for g in groups.values()} <= {"update", "unchanged", "create"}
    totals = check.totals()
    assert totals["images adopted"] > 0
    # Every out-of-date copy, half of them with the S3 image's dimensions (told apart by size).
    assert totals["images replaced"] == len(seeded_shop.report.stale)
    assert totals["images kept_foreign"] > 0 and totals["variant_images_kept"] > 0


@fast_shop
def test_plan_against_shop_command_prints_the_changes_and_exits_0(
    seeded_shop: SeededShop, settings: Settings
) -> None:
    from click.testing import CliRunner

    env = {
        "SHOPIFY_SHOP": seeded_shop.url,
        "SHOPIFY_ACCESS_TOKEN": SHOP_TOKEN,
        "BULKIMG_OUTPUT_DIR": str(settings.output_dir),
        "BULKIMG_POLL_INTERVAL": "0.05",
    }
    from bulkimg.cli import cli

    result = CliRunner().invoke(cli, ["plan", "--against-shop"], env=env)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "what a submit would change" in text and "images adopted" in text
    assert diff(seeded_shop.seeded, snapshot(seeded_shop.shop)) == []
    # The preview shows the same, per card and summed up, until a submit makes it history.
    page = (settings.output_dir / "preview.html").read_text()
    cards = {c["group_id"]: c for c in page_cards(page)}
    shown = {g: c["against_shop"] for g, c in cards.items() if c["against_shop"]}
    assert "the next submit, against the shop" in page
    assert set(shown) == {g for g, c in cards.items() if c["status"] == "planned"}
    assert sum(s["counts"].get("adopted", 0) for s in shown.values()) > 0
    assert any("shop" in c["filters"] for c in cards.values())
    submit(settings)
    render_preview(settings)
    page = (settings.output_dir / "preview.html").read_text()
    assert not any(c["against_shop"] for c in page_cards(page))
    assert "the next submit, against the shop" not in page


def product_with_a_stale_copy(seeded_shop: SeededShop, settings: Settings) -> tuple[str, str]:
    """(group id, product id) of a product the submit changes: it holds an out-of-date copy."""
    stale = seeded_shop.report.stale[0]
    plans = read_jsonl(settings.output_dir / "plan.jsonl")
    group = next(p for p in plans if any(m["s3_key"] == stale for m in p["media"]))
    handle = seeded_shop.report.handles[group["group_id"]]
    found = graphql(seeded_shop.url, PRODUCT_ID, {"handle": handle})["productByIdentifier"]
    return str(group["group_id"]), str(found["id"])


def add_photo(seeded_shop: SeededShop, product_id: str, url: str) -> int:
    """A merchant adds a photo to the product (appended); its media number."""
    added = graphql(
        seeded_shop.url,
        "mutation($id: ID!, $media: [CreateMediaInput!]) { productUpdate(product: {id: $id},"
        " media: $media) { product { id } userErrors { field message } } }",
        {
            "id": product_id,
            "media": [{"originalSource": url, "alt": "Added today", "mediaContentType": "IMAGE"}],
        },
    )
    assert added["productUpdate"]["userErrors"] == []
    number = int(product_id.rsplit("/", 1)[1])
    media = snapshot(seeded_shop.shop).products[number].media
    return next(m.id for m in media if m.alt == "Added today")


@fast_shop
def test_a_photo_added_after_the_build_and_before_the_submit_survives(
    seeded_shop: SeededShop, settings: Settings, image_url: ImageUrl
) -> None:
    group_id, product_id = product_with_a_stale_copy(seeded_shop, settings)
    photo = add_photo(seeded_shop, product_id, image_url("added-today.jpg", size=(400, 400)))
    assert submit(settings).exit_code == 0
    after = snapshot(seeded_shop.shop).products[int(product_id.rsplit("/", 1)[1])]
    assert photo in after.media_by_id()
    assert group_id in sent_groups(settings.output_dir)  # the product did get lines


@pytest.mark.parametrize(
    "shop",
    [{"throttle_bucket_size": 1e6, "throttle_restore_rate": 1e6, "bulk_line_delay": 0.3}],
    indirect=True,
)
def test_a_photo_added_after_the_export_while_the_lines_wait_to_run_survives(
    seeded_shop: SeededShop, settings: Settings, image_url: ImageUrl
) -> None:
    # The window between the export a submit resolves its lines from and the moment a line
    # runs: bulkimg only appends images and deletes its own copies, so nothing added meanwhile
    # can be lost.
    group_id, product_id = product_with_a_stale_copy(seeded_shop, settings)
    shop = seeded_shop.shop
    url = image_url("added-meanwhile.jpg", size=(400, 400))
    photo: list[int] = []

    def add_when_phase_one_starts() -> None:
        wait_for(lambda: shop.faults.seen("bulk_mutation"), bool, timeout=60)
        photo.append(add_photo(seeded_shop, product_id, url))

    merchant = threading.Thread(target=add_when_phase_one_starts)
    merchant.start()
    outcome = submit(settings)
    merchant.join()
    assert outcome.exit_code == 0
    after = snapshot(shop).products[int(product_id.rsplit("/", 1)[1])]
    assert photo and photo[0] in after.media_by_id()
    assert group_id in sent_groups(settings.output_dir)


# --- the canary ----------------------------------------------------------------------------------


@fast_shop
def test_a_canary_sends_n_products_proves_only_images_changed_and_the_rest_follows(
    seeded_shop: SeededShop, settings: Settings
) -> None:
    from bulkimg.run.ledger import productset_files_of_build
    from bulkimg.run.submit import Submission

    with client_from_settings(settings) as client:
        submission = Submission(settings, client, limit=2)
        state = submission.start(productset_files_of_build(settings.output_dir))
        canary = submission.run(state, wait=True)
    assert canary.exit_code == 0 and canary.canary == []
    assert len(sent_groups(settings.output_dir)) == 2 and canary.counts["products_held"] > 0
    rest = submit(settings)
    assert rest.exit_code == 0
    assert len(sent_groups(settings.output_dir)) == canary.counts["products_held"]
    assert harm(seeded_shop, snapshot(seeded_shop.shop)) == []


@fast_shop
def test_a_canary_that_finds_a_change_beyond_images_stops_the_night(
    seeded_shop: SeededShop, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import bulkimg.shop.resolve as resolve

    dump = resolve.dump_line

    def buggy(line: Any) -> bytes:  # a bulkimg bug that also sends a title
        raw = dump(line)
        if isinstance(line, resolve.ProductUpdateMediaLine):
            variables = orjson.loads(raw)
            variables["product"] = {**variables["product"], "title": "Retitled by a bug"}
            raw = orjson.dumps(variables) + b"\n"
        return raw

    monkeypatch.setattr(resolve, "dump_line", buggy)
    monkeypatch.setattr(resolve, "check_images_only", lambda *args: None)
    operations = len(mutation_operations(seeded_shop.url))
    result = run_nightly_with_canary(settings, 2)
    assert result.exit_code == 1
    assert result.submit.canary and all("title changed" in p for p in result.submit.canary)
    assert len(sent_groups(settings.output_dir)) == 2  # the rest was not sent
    # phase 1 (images appended, copies deleted) and phase 2 (variant images, order), once
    assert len(mutation_operations(seeded_shop.url)) - operations <= 4
    failures = read_jsonl(settings.output_dir / "failures.jsonl")
    assert {f["errors"][0]["code"] for f in failures} == {"CANARY_NOT_ONLY_IMAGES"}
    assert not any(f["retryable"] for f in failures)


def run_nightly_with_canary(settings: Settings, canary: int) -> NightlyRun:
    with client_from_settings(settings) as client:
        return run_nightly(settings, client, canary=canary)


# --- variant images ---------------------------------------------------------------------------


def two_image_sets(seeded_shop: SeededShop, sample: Any) -> tuple[ProductSnap, dict[str, Any]]:
    """A product with two image sets of at least two current images each, and the media of each
    set by variation: {"sets": {image_sku: [media id, ...]}, "variants": {image_sku: [id, ...]}}."""
    stale = {key.rsplit("/", 1)[-1] for key in seeded_shop.report.stale}
    by_handle = seeded_shop.seeded.by_handle()
    for group in sample_groups(sample):
        product = by_handle.get(seeded_shop.report.handles.get(group.group_id, ""))
        if product is None:
            continue
        sets: dict[str, list[tuple[str, int]]] = {}
        for media in product.media:
            name = s3_file_of(media.filename)
            if name and name not in stale:
                sets.setdefault(image_sku_of(name), []).append((name, media.id))
        image_skus = {v.sku: v.image_sku for v in group.variants}
        variants: dict[str, list[int]] = {}
        for variant in product.variants:
            variants.setdefault(image_skus.get(variant.sku or "", ""), []).append(variant.id)
        full = [k for k, found in sets.items() if len(found) >= 2 and len(variants.get(k, [])) >= 1]
        if len(full) >= 2 and len(variants[full[0]]) >= 2:
            ordered = {k: [mid for _, mid in sorted(sets[k])] for k in full[:2]}
            return product, {"sets": ordered, "variants": {k: variants[k] for k in full[:2]}}
    raise AssertionError("the sample has no product with two image sets")


@fast_shop
def test_a_variant_showing_bulkimgs_image_of_another_set_gets_its_own_and_others_keep_theirs(
    seeded_shop: SeededShop,
    settings: Settings,
    sample: Any,
    image_url: ImageUrl,
    admin_schemas: list[Any],
) -> None:
    from bulkimg.shopify.documents import load_document, validate_operation

    product, found = two_image_sets(seeded_shop, sample)
    (a, b), store = list(found["sets"]), seeded_shop.shop.services.store
    a_first, a_second = found["variants"][a][:2]
    b_first = found["variants"][b][0]
    photo = add_photo(seeded_shop, f"gid://shopify/Product/{product.id}", image_url("p.jpg"))
    store.link_variant_media(a_first, found["sets"][b][0])  # bulkimg's image of another set
    store.link_variant_media(a_second, found["sets"][a][1])  # a pick within its own set
    store.link_variant_media(b_first, photo)  # a merchant's photo

    outcome = submit(settings)
    shows = {v.id: v.media_id for v in snapshot(seeded_shop.shop).products[product.id].variants}
    assert outcome.exit_code == 0
    assert shows[a_first] == found["sets"][a][0]  # detached, then its primary image attached
    assert (shows[a_second], shows[b_first]) == (found["sets"][a][1], photo)
    assert outcome.counts["variant_images_swapped"] >= 1
    state = RunStore(settings.output_dir).load()
    detach_lines = [line for op in state.ops(Phase.VARIANT_DETACH) for line in
                    read_jsonl(Path(op.input_file))]  # fmt: skip
    assert {"variantId": f"gid://shopify/ProductVariant/{a_first}",
            "mediaIds": [f"gid://shopify/MediaImage/{found['sets'][b][0]}"]} in [
        pair for line in detach_lines for pair in line["variantMedia"]]  # fmt: skip
    for schema in admin_schemas:  # the detach lines are valid for Shopify's own schema
        for line in detach_lines:
            assert validate_operation(schema, load_document("variant_detach_media"), line) == []

    again = submit(settings)  # the same build once more: nothing is detached again
    assert again.exit_code == 0 and again.counts["variant_images_swapped"] == 0
    assert not RunStore(settings.output_dir).load().ops(Phase.VARIANT_DETACH)

    asked = settings.model_copy(update={"replace_variant_images": True})
    replaced = submit(asked)
    shows = {v.id: v.media_id for v in snapshot(seeded_shop.shop).products[product.id].variants}
    assert replaced.exit_code == 0
    assert (shows[a_second], shows[b_first]) == (found["sets"][a][0], found["sets"][b][0])
    assert photo in snapshot(seeded_shop.shop).products[product.id].media_by_id()


@fast_shop
def test_a_shop_where_the_old_workflow_uploaded_everything_gets_no_upload_and_keeps_every_image(
    shop: SandboxShop, shop_url: str, sample: Any, settings: Settings
) -> None:
    from bulkimg.sandbox.seed import SeedOptions

    complete = SeedOptions(with_images=1.0, partial_images=0.0, stale_images=0.0, lifestyle=0.4)
    report = seed_existing_catalog(
        shop, sample_groups(sample), images_from_objects(sample.objects), seed=SEED_NUMBER,
        options=complete,
    )  # fmt: skip
    before = snapshot(shop)
    outcome = submit(settings)
    after = snapshot(shop)
    assert outcome.exit_code == 0
    counts = outcome.counts
    assert (counts["images_uploaded"], counts["images_replaced"], counts["images_removed"]) == (
        0, 0, 0,
    )  # fmt: skip
    assert counts["images_adopted"] == report.catalog_images
    assert sent_lines(settings.output_dir) == []  # no productUpdate, no fileDelete
    for product in before.products.values():  # every image still there, none added
        assert set(after.products[product.id].media_by_id()) == set(product.media_by_id())
    assert shop.faults.seen("media_fetch") == 0
