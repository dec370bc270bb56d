"""The first night against a shop that already holds every product (`python -m bench --only
first-night`).

A sandbox shop is seeded with the "existing-catalog" scenario from the world's catalog and
objects (every group a product with real options and priced variants; the old workflow's
uploads of the same S3 files on most products, some out of date, some partial; merchants'
lifestyle photos; a few hand-set variant images; products of other departments). bulkimg then
runs its first night with no state file (`bulkimg run`: reconcile, build, submit --wait), and a
second night. Counted: bulk operations, lines sent, images uploaded (only the missing or
out-of-date ones should be), images adopted, Shopify requests, wall time; and what changed on
the shop beyond images (must be nothing).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.shopify import SANDBOX_TOKEN, build_settings, counted_client
from bench.world import World


def measure_first_night(
    endpoint: str, world: World, catalog: Path, workdir: Path, say: Callable[[str], None]
) -> dict[str, Any]:
    """Seed a shop from `catalog` and the world's objects, then two nights of `bulkimg run`."""
    from bulkimg.catalog import ColumnMap, open_catalog, read_catalog
    from bulkimg.config import load_settings
    from bulkimg.run.nightly import run_nightly
    from bulkimg.sandbox import SandboxConfig, SandboxShop, serve
    from bulkimg.sandbox.seed import S3Image, seed_existing_catalog
    from bulkimg.sandbox.snapshot import MEDIA_FIELDS, diff, snapshot

    workdir.mkdir(parents=True, exist_ok=True)
    groups = read_catalog(open_catalog(f"sqlite:///{catalog}", "nav_items", ColumnMap())).groups
    images = _world_images(world, S3Image)
    config = SandboxConfig(
        access_token=SANDBOX_TOKEN, media_processing_delay=0.0, media_workers=8, shuffle_seed=1,
        throttle_bucket_size=1e6, throttle_restore_rate=1e6,
    )  # fmt: skip
    with SandboxShop(workdir / "shop.sqlite", config) as shop, serve(shop) as url:
        seeded = seed_existing_catalog(shop, groups, images, seed=7)
        say(f"  {seeded.summary()}")
        before = snapshot(shop)
        overrides: dict[str, Any] = build_settings(endpoint, catalog) | {
            "output_dir": workdir / "output",
            "logs_dir": workdir / "logs",
            "cache_dir": workdir / "cache",
            "state_file": workdir / "output" / "state.sqlite",
            "shopify_shop": url,
            "shopify_access_token": SANDBOX_TOKEN,
        }
        settings = load_settings(overrides, env_file=None)
        nights = []
        for label in ("first night", "second night"):
            with counted_client(settings, shop) as (client, counter):
                started = time.monotonic()
                night = run_nightly(settings, client)
                wall = time.monotonic() - started
            nights.append(_night(night, counter.total, wall))
            say(f"  {label}: {nights[-1]}")
        harm = [str(c) for c in diff(before, snapshot(shop)) if c.field not in MEDIA_FIELDS]
        harm = [h for h in harm if "absent" not in h]  # products it created
    return {
        "products_seeded": seeded.products,
        "media_seeded": seeded.media,
        "groups": len(groups),
        "first_night": nights[0],
        "second_night": nights[1],
        "changes_beyond_images": len(harm),
        "changes_beyond_images_sample": harm[:5],
    }


def _night(night: Any, calls: int, wall: float) -> dict[str, Any]:
    report, counts = night.report, night.submit.counts
    return {
        "exit_code": night.exit_code,
        "wall_seconds": round(wall, 1),
        "shopify_requests": calls,
        "bulk_operations": report.bulk_operations,
        "lines_sent": counts.get("lines_submitted", 0),
        "images_uploaded": report.images_uploaded,
        "images_adopted": report.images_adopted,
        "images_replaced": report.images_replaced,
        "images_kept_foreign": report.images_kept_foreign,
        "products_created": report.products_created,
        "products_conflict": report.products_conflict,
        "variant_media_lines": counts.get("variant_media_lines", 0),
    }


def _world_images(world: World, image_type: Any) -> list[Any]:
    """Every object of the world as the seeder sees it (its template's format and size)."""
    templates = world.templates()
    sizes = {name: len(data) for name, data in world.template_bytes().items()}
    formats = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "gif": "gif", "webp": "webp"}
    found = []
    for obj in world.objects():
        template = templates.get(obj.template)
        if template is None:
            found.append(image_type(obj.key, None, 0, 0, sizes.get(obj.template, 0)))
            continue
        fmt = formats.get(template.ext.lower().lstrip("."))
        found.append(image_type(obj.key, fmt, template.width, template.height, sizes[obj.template]))
    return found
