"""Fill a sandbox shop the way bulkimg's users' shops are: products made by their existing
workflow, its images uploaded straight from S3, and what merchants did by hand since.

    report = seed_existing_catalog(shop, catalog.groups, images_from_objects(sample.objects))

The scenario "existing-catalog" (all shares are :class:`SeedOptions`, drawn with ``seed``):

* every catalog group is a product: handle = bulkimg's handle for the group (the lower-cased
  group id), except ~5% renamed by merchants (``<handle>-ring`` or a title slug); the catalog
  title (or a made-up one), ~10% of them edited by merchants; real options (Metal, Ring Size,
  Carat; a single variant has Shopify's ``Title``/``Default Title``), one variant per catalog
  row with its ``No_`` as SKU, a price, sometimes a compare-at price, a barcode, an inventory
  quantity; description, tags, vendor, product type, one metafield ``custom.stone``; ACTIVE,
  some DRAFT.
* the old workflow's images on ~90% of the products: each accepted S3 image of the group's
  Image_SKUs (Image_SKUs in order of first appearance, each by variation, as bulkimg plans them),
  READY, file name = the S3 file name (``originalSource`` was the S3 URL), alt
  ``<Image_SKU> - Image <N>``, the image's real width and height. ~10% of those products have
  only their first images. ~5% of the images are out of date: the S3 object was replaced after
  the upload, so the shop holds the older version; the seeder records it with another file size
  and, for half of them, other dimensions (S3 is not touched), and lists it in the report. Every
  image's ``originalSource.fileSize`` is recorded.
* merchants' lifestyle photos (``lifestyle-<n>.jpg``, alt "On model") on ~30% of the products at
  random positions; ~3% of the variants with an image set by hand (any media of the product,
  sometimes a lifestyle photo).
* a few products of other departments, not in the catalog.

Accepted S3 image, as bulkimg's build decides by name and header: the name follows
``<Image_SKU>-<N>a-<digits>.<ext>`` with an accepted extension, the newest object of each
variation wins, and the build's image rules (images/rules.py) accept its size and header.

Rows are written straight into the store in one transaction (no GraphQL, no media download):
20,000 products take seconds. The same seed gives the same shop.
"""

from __future__ import annotations

import itertools
import random
import re
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from bulkimg.images.header import (
    InvalidImage,
    NeedBytes,
    read_image_header_from_bytes,
)
from bulkimg.images.rules import ImageRules
from bulkimg.models import CatalogGroup, ImageProbe, ImageSkuState
from bulkimg.plan.groups import PlanRules
from bulkimg.s3.keys import ParsedName, parse_image_name
from bulkimg.sandbox.store import (
    Media,
    Metafield,
    Product,
    ProductOption,
    SeedRows,
    VariantRow,
)
from bulkimg.statuses import MediaStatus

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from bulkimg.config import Settings
    from bulkimg.sandbox.shop import SandboxShop

SCENARIOS = ("existing-catalog",)
LIFESTYLE_ALT = "On model"
_MIME = {"jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}
_METALS = ("14K White Gold", "14K Yellow Gold", "14K Rose Gold", "18K White Gold", "Platinum")
_SIZES = tuple(f"{n / 2:g}" for n in range(8, 22))  # 4 … 10.5
_CARATS = ("0.5 ct", "0.75 ct", "1 ct", "1.5 ct", "2 ct", "3 ct")
_OPTION_VALUES = {"Metal": _METALS, "Ring Size": _SIZES, "Carat": _CARATS}
_OPTION_SETS = (("Metal",), ("Ring Size",), ("Carat",), ("Metal", "Ring Size"), ("Carat", "Metal"))
_STONES = ("Moissanite", "Lab Diamond", "Sapphire", "Emerald", "Ruby")
_STYLES = ("Solitaire Ring", "Halo Ring", "Pendant", "Stud Earrings", "Tennis Bracelet", "Band")
_TAGS = ("bridal", "engagement", "gift", "bestseller", "new-arrival", "anniversary")
_PRICES = (499, 649, 799, 999, 1299, 1899, 2499)
_FOREIGN = (
    ("gift-card", "Gift Card", "Gift Cards", "GC-"),
    ("jewelry-cleaning-kit", "Jewelry Cleaning Kit", "Accessories", "ACC-"),
    ("ring-sizer", "Ring Sizer", "Accessories", "ACC-"),
    ("ring-box-walnut", "Walnut Ring Box", "Packaging", "PKG-"),
    ("insurance-appraisal", "Insurance Appraisal", "Services", "SVC-"),
)
_TYPES = (
    ("ring", "Rings"),
    ("band", "Rings"),
    ("pendant", "Pendants"),
    ("necklace", "Necklaces"),
    ("earrings", "Earrings"),
    ("bracelet", "Bracelets"),
)
_MERCHANT_TITLES = ("Free Resizing", "Ships in 48 Hours", "Holiday Edit", "Certified")
_SLUG = re.compile(r"[^a-z0-9]+")


SeedMedia = tuple[str, str, int, int, str, int]
"""(file name, alt, width, height, mime type, bytes of the original file)"""


@dataclass(frozen=True, slots=True)
class S3Image:
    """An S3 object as the seeder needs it: key, what its header says, and its order."""

    key: str
    format: str | None
    """``jpeg``/``png``/``gif``/``webp`` as the header says; None: not a readable image."""
    width: int
    height: int
    size: int
    last_modified: float = 0.0

    @property
    def filename(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def image_from_bytes(key: str, body: bytes, last_modified: float = 0.0) -> S3Image:
    try:
        header = read_image_header_from_bytes(body)
    except (InvalidImage, NeedBytes):
        return S3Image(key, None, 0, 0, len(body), last_modified)
    return S3Image(key, header.format.value, header.width, header.height, len(body), last_modified)


def images_from_objects(objects: Mapping[str, bytes]) -> list[S3Image]:
    """S3 objects held in memory (e.g. :class:`bulkimg.demo.samples.SampleData`), newest last."""
    return [image_from_bytes(key, body, float(i)) for i, (key, body) in enumerate(objects.items())]


def images_from_bucket(
    client: S3Client,
    bucket: str,
    image_skus: Collection[str] | None = None,
    prefix: str = "sorted-media/",
) -> list[S3Image]:
    """The objects under ``prefix`` of ``bucket`` (only those named for one of ``image_skus``,
    when given), each header read from its first 64 KB (the whole object when it needs more)."""
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key, size = item["Key"], item["Size"]
            name = key.rsplit("/", 1)[-1]
            if image_skus is not None and not _named_for(name, image_skus):
                continue
            modified = item["LastModified"].timestamp()
            if size == 0:
                found.append(S3Image(key, None, 0, 0, 0, modified))
                continue
            head = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{_HEAD - 1}")
            body = head["Body"].read()
            try:
                header = read_image_header_from_bytes(body, max(size, len(body)))
            except NeedBytes:
                body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
                found.append(image_from_bytes(key, body, modified))
                continue
            except InvalidImage:
                found.append(S3Image(key, None, 0, 0, size, modified))
                continue
            found.append(
                S3Image(key, header.format.value, header.width, header.height, size, modified)
            )
    return found


_HEAD = 65_536


def _named_for(name: str, image_skus: Collection[str]) -> bool:
    return any(c == "-" and name[:i] in image_skus for i, c in enumerate(name))


def seed_from_settings(
    shop: SandboxShop,
    settings: Settings,
    *,
    seed: int = 0,
    options: SeedOptions | None = None,
    s3_client: S3Client | None = None,
) -> SeedReport:
    """Seed from the catalog and bucket of ``settings`` (what `bulkimg build` would read)."""
    from bulkimg.catalog import open_settings_catalog, read_catalog
    from bulkimg.s3.client import make_s3_client

    settings.require("catalog", "aws_s3_bucket")
    source = open_settings_catalog(settings)
    groups = read_catalog(source).groups
    skus = {
        v.image_sku for g in groups for v in g.variants if v.image_sku_state is ImageSkuState.OK
    }
    client = s3_client or make_s3_client(settings)
    images = images_from_bucket(client, settings.aws_s3_bucket or "", skus)
    base = options or SeedOptions()
    options = replace(
        base,
        image_rules=ImageRules.from_settings(settings),
        handle_template=settings.handle_template,
        alt_template=settings.alt_template,
    )
    return seed_existing_catalog(shop, groups, images, seed=seed, options=options)


# The settings' defaults (BULKIMG_MIN_WIDTH, ...): seed_from_settings uses the settings'.
DEFAULT_RULES = ImageRules(200, 200, 20 * 1024 * 1024, 20.0)


@dataclass(frozen=True, slots=True)
class SeedOptions:
    """Shares and sizes of the scenario (probabilities per product unless said)."""

    renamed: float = 0.05
    retitled: float = 0.10
    """A merchant edited the title (the catalog's title is no longer the product's)."""
    with_images: float = 0.90
    partial_images: float = 0.10
    """Of the products with images: only their first images."""
    stale_images: float = 0.05
    """Per image: the shop holds an older version of the S3 object."""
    lifestyle: float = 0.30
    hand_set_variant_images: float = 0.03
    """Per variant."""
    draft: float = 0.10
    compare_at_price: float = 0.25
    foreign_products: int = 3
    image_rules: ImageRules = DEFAULT_RULES
    handle_template: str = "{group_id}"
    alt_template: str = "{image_sku} - Image {variation}"


@dataclass(frozen=True, slots=True)
class SeedReport:
    """What the seeder put in the shop."""

    products: int
    variants: int
    media: int
    catalog_images: int
    lifestyle_images: int
    hand_set_variant_images: int
    renamed: Mapping[str, str]
    """group id → the handle a merchant gave the product"""
    handles: Mapping[str, str]
    """group id → handle, for every catalog group"""
    stale: tuple[str, ...]
    """S3 keys whose image on the shop is an older version"""
    partial: tuple[str, ...]
    """group ids whose product has only part of its images"""
    retitled: tuple[str, ...]
    """group ids whose product a merchant gave another title than the catalog's"""
    foreign_products: tuple[str, ...]
    """handles of the products not in the catalog"""
    seconds: float

    def summary(self) -> str:
        return (
            f"seeded {self.products} products ({len(self.foreign_products)} not in the catalog,"
            f" {len(self.renamed)} renamed, {len(self.retitled)} retitled),"
            f" {self.variants} variants, {self.media} media"
            f" ({self.catalog_images} from S3, {len(self.stale)} out of date,"
            f" {self.lifestyle_images} lifestyle), {self.hand_set_variant_images} variant images"
            f" set by hand, {len(self.partial)} products with part of their images"
            f" in {self.seconds:.2f} s"
        )


def accepted_images(
    groups: Sequence[CatalogGroup], images: Iterable[S3Image], options: SeedOptions
) -> dict[str, list[tuple[int, S3Image]]]:
    """Image_SKU → its accepted images as (variation, image), by variation."""
    wanted = {
        v.image_sku for g in groups for v in g.variants if v.image_sku_state is ImageSkuState.OK
    }
    newest: dict[tuple[str, int], S3Image] = {}
    for image in images:
        name = image.filename
        # An Image_SKU may hold '-': every prefix that ends before a '-' may be one.
        candidates = [name[:i] for i, c in enumerate(name) if c == "-" and name[:i] in wanted]
        for candidate in candidates:
            parsed = parse_image_name(image.filename, candidate)
            if not isinstance(parsed, ParsedName):
                continue
            slot = (candidate, parsed.variation)
            old = newest.get(slot)
            if old is None or (image.last_modified, image.key) > (old.last_modified, old.key):
                newest[slot] = image
    found: dict[str, list[tuple[int, S3Image]]] = {}
    for (sku, variation), image in sorted(newest.items()):
        if _accepted(image, options.image_rules):
            found.setdefault(sku, []).append((variation, image))
    return found


def _accepted(image: S3Image, rules: ImageRules) -> bool:
    """The build's image rules (images/rules.py) on what the seeder read of the header."""
    if image.format is None or rules.by_size(image.size) is not None:
        return False
    probe = ImageProbe(image.format, image.width, image.height, None)
    return rules.judge(probe, image.filename.rsplit(".", 1)[-1]).rejection is None


@dataclass(slots=True)
class _Ids:
    product: int
    option: int
    variant: int
    media: int
    metafield: int

    def take(self, kind: str) -> int:
        value: int = getattr(self, kind)
        setattr(self, kind, value + 1)
        return value


@dataclass(slots=True)
class _Builder:
    rng: random.Random
    ids: _Ids
    now: float
    rows: SeedRows = field(default_factory=lambda: SeedRows([], [], [], [], [], [], []))
    draft_share: float = 0.1
    compare_share: float = 0.25
    lifestyle_count: int = 0
    hand_set: int = 0

    def product(self, handle: str, title: str, product_type: str) -> int:
        rng = self.rng
        stone = rng.choice(_STONES)
        product_id = self.ids.take("product")
        created = self.now - rng.randrange(30, 900) * 86_400
        self.rows.products.append(
            Product(
                product_id,
                handle,
                title,
                "DRAFT" if rng.random() < self.draft_share else "ACTIVE",
                "Bulkimg Fine Jewelry",
                product_type,
                f"<p>{title}, set with a {stone.lower()} and handcrafted to order.</p>"
                f"<ul><li>Conflict-free</li><li>Lifetime warranty</li></ul>",
                tuple(sorted({stone.lower().replace(" ", "-"), *rng.sample(_TAGS, 2)})),
                created,
                created + rng.randrange(0, 86_400),
            )
        )
        self.rows.metafields.append(
            Metafield(
                self.ids.take("metafield"),
                product_id,
                "custom",
                "stone",
                "single_line_text_field",
                stone,
            )
        )
        return product_id

    def variants(self, product_id: int, skus: Sequence[str]) -> list[int]:
        rng = self.rng
        names, combos = _option_combos(len(skus), rng)
        for position, name in enumerate(names, start=1):
            values = tuple(dict.fromkeys(combo[position - 1] for combo in combos))
            self.rows.options.append(
                ProductOption(self.ids.take("option"), product_id, position, name, values)
            )
        base = rng.choice(_PRICES)
        compare = rng.random() < self.compare_share
        ids = []
        for position, (sku, combo) in enumerate(zip(skus, combos, strict=True), start=1):
            variant_id = self.ids.take("variant")
            price = base + 50 * (position - 1)
            self.rows.variants.append(
                VariantRow(
                    variant_id,
                    product_id,
                    position,
                    sku,
                    f"{price}.00",
                    f"{round(price * 1.25)}.00" if compare else None,
                    f"{rng.randrange(10**11, 10**12)}",
                    tuple(zip(names, combo, strict=True)),
                    self.now - 86_400,
                    self.now - 86_400,
                )
            )
            self.rows.inventory.append((variant_id, rng.randrange(0, 26)))
            ids.append(variant_id)
        return ids

    def media(self, product_id: int, items: Sequence[SeedMedia]) -> list[int]:
        """(filename, alt, width, height, mime type, file size) in position order; their ids."""
        ids = []
        for position, (filename, alt, width, height, mime, size) in enumerate(items, start=1):
            media_id = self.ids.take("media")
            self.rows.media_sizes.append((media_id, size))
            self.rows.media.append(
                Media(
                    media_id,
                    product_id,
                    position,
                    alt,
                    MediaStatus.READY,
                    filename,
                    None,
                    width,
                    height,
                    mime,
                    None,
                    None,
                    self.now - 86_400,
                    self.now - 86_400,
                )
            )
            ids.append(media_id)
        return ids


def _option_combos(count: int, rng: random.Random) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Option names and one distinct combination of values per variant."""
    if count == 1:
        return ("Title",), [("Default Title",)]
    choices = [
        names
        for names in _OPTION_SETS
        if _capacity(names) >= count and (len(names) == 1 or count > 3)
    ]
    names = rng.choice(choices) if choices else ("Metal", "Ring Size", "Carat")
    if _capacity(names) < count:
        return ("Style",), [(f"Style {n}",) for n in range(1, count + 1)]
    lists = [_OPTION_VALUES[name] for name in names]
    return names, list(itertools.islice(itertools.product(*lists), count))


def _capacity(names: Sequence[str]) -> int:
    total = 1
    for name in names:
        total *= len(_OPTION_VALUES[name])
    return total


def _slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-")


def _product_type(title: str) -> str:
    words = set(_SLUG.sub(" ", title.lower()).split())
    return next((kind for word, kind in _TYPES if word in words), "Jewelry")


def _made_up_title(rng: random.Random) -> str:
    return f"{rng.choice(_STONES)} {rng.choice(_STYLES)}"


def _mime(image: S3Image) -> str:
    return _MIME.get(image.format or "", "image/jpeg")


def seed_existing_catalog(
    shop: SandboxShop,
    groups: Sequence[CatalogGroup],
    images: Iterable[S3Image],
    *,
    seed: int = 0,
    options: SeedOptions | None = None,
) -> SeedReport:
    """Fill ``shop`` as the user's existing workflow and merchants left it (see the module)."""
    started = time.monotonic()
    options = options or SeedOptions()
    rng = random.Random(seed)
    store = shop.services.store
    rules = PlanRules(options.handle_template, options.alt_template)
    accepted = accepted_images(groups, images, options)
    ids = _Ids(
        store.next_id("products"),
        store.next_id("options"),
        store.next_id("variants"),
        store.next_id("media"),
        store.next_id("metafields"),
    )
    build = _Builder(
        rng, ids, time.time(), draft_share=options.draft, compare_share=options.compare_at_price
    )
    taken = {p.handle for p in store.products()}
    handles: dict[str, str] = {}
    renamed: dict[str, str] = {}
    stale: list[str] = []
    partial: list[str] = []
    retitled: list[str] = []
    catalog_images = 0
    for group in groups:
        if not group.variants:
            continue
        title = group.title or _made_up_title(rng)
        handle = rules.handle(group.group_id)
        if rng.random() < options.renamed:
            handle = rng.choice([f"{handle}-ring", f"{_slug(title)}-{_slug(group.group_id)}"])
            renamed[group.group_id] = handle
        while handle in taken:
            handle += "-1"
        taken.add(handle)
        handles[group.group_id] = handle
        product_type = _product_type(title)
        if rng.random() < options.retitled:
            title = f"{title} | {rng.choice(_MERCHANT_TITLES)}"
            retitled.append(group.group_id)
        product_id = build.product(handle, title, product_type)
        variant_ids = build.variants(product_id, [v.sku for v in group.variants])

        items: list[SeedMedia] = []
        if rng.random() < options.with_images:
            skus = dict.fromkeys(
                v.image_sku for v in group.variants if v.image_sku_state is ImageSkuState.OK
            )
            for sku in skus:
                for variation, image in accepted.get(sku, []):
                    alt = rules.alt(sku, variation, len(items) + 1, group.group_id)
                    width, height, size = image.width, image.height, image.size
                    if rng.random() < options.stale_images:
                        # An older version: other dimensions, or (half of them) the same
                        # dimensions in another number of bytes (re-exported, retouched).
                        if rng.random() < 0.5:
                            width, height = width * 3 // 4 + 1, height * 3 // 4 + 1
                        size = size * 9 // 10 + 1
                        stale.append(image.key)
                    items.append((image.filename, alt, width, height, _mime(image), size))
            if len(items) > 1 and rng.random() < options.partial_images:
                kept = rng.randrange(1, len(items))
                dropped = {name for name, *_ in items[kept:]}
                stale = [key for key in stale if key.rsplit("/", 1)[-1] not in dropped]
                items = items[:kept]
                partial.append(group.group_id)
        catalog_images += len(items)
        if rng.random() < options.lifestyle:
            for _ in range(rng.choice((1, 1, 2))):
                build.lifestyle_count += 1
                name = f"lifestyle-{build.lifestyle_count}.jpg"
                items.insert(
                    rng.randrange(0, len(items) + 1),
                    (name, LIFESTYLE_ALT, 1200, 1500, "image/jpeg", 240_000 + rng.randrange(9_999)),
                )
        media_ids = build.media(product_id, items)
        if media_ids:
            for variant_id in variant_ids:
                if rng.random() < options.hand_set_variant_images:
                    build.rows.variant_media.append((variant_id, rng.choice(media_ids)))
                    build.hand_set += 1

    foreign: list[str] = []
    for handle, title, product_type, prefix in _FOREIGN[: options.foreign_products]:
        if handle in taken:
            continue
        taken.add(handle)
        foreign.append(handle)
        product_id = build.product(handle, title, product_type)
        count = rng.choice((1, 1, 3))
        build.variants(
            product_id, [f"{prefix}{rng.randrange(10_000, 99_999)}" for _ in range(count)]
        )
        build.media(product_id, [(f"{handle}.png", title, 1000, 1000, "image/png", 180_000)])

    store.insert_seed(build.rows)
    return SeedReport(
        products=len(build.rows.products),
        variants=len(build.rows.variants),
        media=len(build.rows.media),
        catalog_images=catalog_images,
        lifestyle_images=build.lifestyle_count,
        hand_set_variant_images=build.hand_set,
        renamed=renamed,
        handles=handles,
        stale=tuple(stale),
        partial=tuple(partial),
        retitled=tuple(retitled),
        foreign_products=tuple(foreign),
        seconds=time.monotonic() - started,
    )
