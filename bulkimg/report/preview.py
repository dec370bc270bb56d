"""The run preview: output/preview.html, one self-contained page of what a run puts on Shopify.

plan.jsonl (+ manifest.jsonl, failures.jsonl when a submit wrote them) -> one card per group ->
a Jinja2 page (autoescaped) that embeds the cards as gzip+base64 JSON and renders them lazily
with an inline script.

Security: no catalog or S3 value is in the markup except inside that base64 block; the script
puts them into the DOM as text (textContent, setAttribute), and only http(s) and our own
data:image/jpeg URLs as `img src`. The inline script and style are allowed by their SHA-256 in a
Content-Security-Policy with `default-src 'none'`. The only secret-bearing strings are the
presigned image URLs.
"""

from __future__ import annotations

import base64
import hashlib
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
from botocore.exceptions import NoCredentialsError
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from bulkimg.config import Settings
from bulkimg.formats.failures import FailureRecord, read_failures
from bulkimg.formats.manifest import ManifestRecord, read_manifest
from bulkimg.formats.plan import PLAN_FILE, PlanRecord, read_plan
from bulkimg.formats.resolution import ResolvedGroup, read_resolution
from bulkimg.outputs import OutputSet
from bulkimg.report.thumbnails import CACHE_FILE, DATA_URI_PREFIX, ThumbnailCache, Thumbnailer
from bulkimg.s3.presign import LinkLifetime, link_lifetime, presigner

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREVIEW_FILE = "preview.html"
MANIFEST_FILE = "manifest.jsonl"
FAILURES_FILE = "failures.jsonl"

# Filter buttons, in order: name -> label. A card's `filters` says which ones show it.
FILTERS = {
    "all": "all",
    "changed": "changed this run",
    "failed": "failed",
    "missing": "missing",
    "unchanged": "no change",
    "shop": "would change on the shop",
}
# What `plan --against-shop` found, in the order the page shows it.
SHOP_COUNTS = ("adopted", "uploaded", "replaced", "removed", "kept_foreign",
               "variant_images_set", "variant_images_swapped", "variant_images_kept")  # fmt: skip


def load_manifest(path: Path | None) -> dict[str, ManifestRecord]:
    """Manifest lines by group id; none when the file does not exist (no submit yet)."""
    if path is None or not path.is_file():
        return {}
    return {r.group_id: r for r in read_manifest(path)}


def load_failures(path: Path | None) -> dict[str, list[FailureRecord]]:
    """Failure lines by group id; none when the file does not exist."""
    failures: dict[str, list[FailureRecord]] = defaultdict(list)
    for record in read_failures(path) if path is not None else []:
        failures[record.group_id].append(record)
    return dict(failures)


# --- The page model: one card per group --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardImage:
    position: int  # upload order; 1 is the featured image
    label: str  # the variation, as in the file name: "1a", "2a", "10a"
    image_sku: str
    s3_key: str
    width: int
    height: int
    alt: str
    src: str | None  # presigned http(s) URL or a data: JPEG made here; None: a placeholder
    media_status: str | None  # from the manifest, after a submit


@dataclass(frozen=True, slots=True)
class CardVariant:
    sku: str
    image_sku: str
    image: int | None  # position of the image it will show; None: it has none
    attached: int | None  # position the manifest says it shows (0: another file)
    submitted: bool  # the manifest has this variant


@dataclass(frozen=True, slots=True)
class CardProblem:
    """A missing image (sku, image_sku, reason) or a rejected file (s3_key, image_sku, reason)."""

    sku: str
    image_sku: str
    s3_key: str
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class CardErrorLine:
    code: str
    field: str
    message: str


@dataclass(frozen=True, slots=True)
class CardFailure:
    phase: str
    retryable: bool
    errors: list[CardErrorLine]


@dataclass(frozen=True, slots=True)
class CardShop:
    """What a submit would do to the group's product, as `plan --against-shop` resolved it."""

    action: str  # create, update, unchanged, conflict, not_created
    match: str  # handle, sku, new, conflict
    product_id: str | None
    detail: str
    counts: dict[str, int]  # SHOP_COUNTS that are not 0

    @classmethod
    def of(cls, group: ResolvedGroup) -> CardShop:
        counts = {name: getattr(group, name) for name in SHOP_COUNTS if getattr(group, name)}
        return cls(group.action, group.match, group.product_id, group.detail, counts)

    @property
    def changes(self) -> bool:
        return self.action in ("create", "update") or bool(
            self.counts.get("variant_images_set") or self.counts.get("variant_images_swapped")
        )


@dataclass(frozen=True, slots=True)
class Card:
    group_id: str
    handle: str
    title: str
    status: str  # planned, deferred, unchanged
    deferred_reason: str | None
    outcome: str | None  # done, failed, missing; None before a submit
    action: str | None  # create, update, unchanged, conflict, not_created (manifest)
    product_id: str | None
    images: list[CardImage]
    variants: list[CardVariant]
    missing: list[CardProblem]
    rejected: list[CardProblem]
    failures: list[CardFailure]
    filters: list[str]
    against_shop: CardShop | None = None  # `plan --against-shop`, when newer than plan and run


ImageSource = Callable[[str, str], str | None]  # (s3_key, etag) -> img src


def build_card(
    plan: PlanRecord,
    manifest: ManifestRecord | None,
    failures: list[FailureRecord],
    image_src: ImageSource,
    resolved: ResolvedGroup | None = None,
) -> Card:
    """What the page shows for one group: the plan, what a submit would do on the shop (from
    `plan --against-shop`) and the outcome when there is one."""
    media_status = {m.s3_key: m.status for m in manifest.media} if manifest else {}
    images = [
        CardImage(
            *(m.position, f"{m.variation}a", m.image_sku, m.s3_key, m.width, m.height, m.alt),
            src=_checked(image_src(m.s3_key, m.etag)),
            media_status=media_status.get(m.s3_key),
        )
        for m in plan.media
    ]
    card = Card(
        group_id=plan.group_id,
        handle=plan.handle,
        title=plan.title,
        status=plan.status,
        deferred_reason=plan.deferred_reason,
        outcome=manifest.status if manifest else None,
        action=manifest.action if manifest else None,
        product_id=manifest.product_id if manifest else None,
        images=images,
        variants=_variants(plan, manifest),
        missing=[CardProblem(m.sku, m.image_sku, "", m.reason, m.detail) for m in plan.missing],
        rejected=[
            CardProblem("", r.image_sku, r.s3_key, r.reason, r.detail) for r in plan.rejected
        ],
        failures=[_failure(f) for f in failures],
        filters=[],
        against_shop=CardShop.of(resolved) if resolved else None,
    )
    card.filters.extend(card_filters(card))
    return card


def _checked(src: str | None) -> str | None:
    """Only http(s) URLs and our own data: JPEGs may become an img src (never javascript:)."""
    return src if src and src.startswith(("https://", "http://", DATA_URI_PREFIX)) else None


def _variants(plan: PlanRecord, manifest: ManifestRecord | None) -> list[CardVariant]:
    position = {m.s3_key: m.position for m in plan.media}
    done = {v.sku: v for v in manifest.variants} if manifest else {}
    variants = []
    for v in plan.variants:
        result = done.get(v.sku)
        attached = None
        if result is not None and result.media_id is not None:
            attached = position.get(result.s3_key or "", 0)
        image = position.get(v.image_s3_key) if v.image_s3_key else None
        variants.append(CardVariant(v.sku, v.image_sku, image, attached, result is not None))
    return variants


def _failure(record: FailureRecord) -> CardFailure:
    errors = [
        CardErrorLine(
            e.code or "",
            ".".join(e.field) if isinstance(e.field, list) else (e.field or ""),
            e.message,
        )
        for e in record.errors
    ]
    return CardFailure(record.phase, record.retryable, errors)


def card_filters(card: Card) -> list[str]:
    """The filter buttons that show this card (the rules of the filters live here, not in JS)."""
    names = ["all"]
    if card.status == "planned":
        names.append("changed")
    failed_media = any(i.media_status == "FAILED" for i in card.images)
    if card.outcome == "failed" or card.failures or failed_media:
        names.append("failed")
    if card.missing or card.outcome == "missing":
        names.append("missing")
    if card.status in ("unchanged", "deferred"):
        names.append("unchanged")
    if card.against_shop is not None and card.against_shop.changes:
        names.append("shop")
    return names


@dataclass(slots=True)
class Summary:
    """The counts in the bar at the top of the page."""

    groups: int = 0
    images: int = 0
    variants: int = 0
    variants_missing: int = 0
    files_rejected: int = 0
    status: Counter[str] = field(default_factory=Counter)
    outcome: Counter[str] = field(default_factory=Counter)
    filters: Counter[str] = field(default_factory=Counter)
    shop: Counter[str] = field(default_factory=Counter)  # plan --against-shop: actions, counts

    def add(self, card: Card) -> None:
        self.groups += 1
        self.images += len(card.images)
        self.variants += len(card.variants)
        self.variants_missing += len(card.missing)
        self.files_rejected += len(card.rejected)
        self.status[card.status] += 1
        if card.outcome:
            self.outcome[card.outcome] += 1
        self.filters.update(card.filters)
        if card.against_shop is not None:
            self.shop[f"products {card.against_shop.action}"] += 1
            self.shop.update(card.against_shop.counts)


class CardSet:
    """The cards as one gzip-compressed JSON array, compressed as they are built.

    Presigned URLs are most of a card (each repeats the credential scope and any session token),
    so the array compresses ~20x: 20,000 groups stay a few MB instead of ~100 MB of HTML.
    """

    def __init__(self) -> None:
        self.summary = Summary()
        self.group_ids: set[str] = set()
        self._gzip = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip container
        self._chunks = [self._gzip.compress(b"[")]
        self._finished = False

    def add(self, card: Card) -> None:
        if self._finished:
            raise ValueError("CardSet already finished")
        comma = b"," if self.summary.groups else b""
        self._chunks.append(self._gzip.compress(comma + orjson.dumps(card)))
        self.summary.add(card)
        self.group_ids.add(card.group_id)

    @classmethod
    def of(cls, cards: Iterable[Card]) -> CardSet:
        card_set = cls()
        for card in cards:
            card_set.add(card)
        return card_set

    def base64_pieces(self, size: int = 1 << 16) -> Iterator[str]:
        """The finished array, gzip in base64 (only A-Z a-z 0-9 + / =: it cannot end its tag).

        In pieces of about `size` characters, so the page is written without the whole array
        ever being one string; the pieces joined are the array's base64.
        """
        if not self._finished:
            self._chunks += [self._gzip.compress(b"]"), self._gzip.flush()]
            self._finished = True
        pending = b""
        for chunk in self._chunks:
            pending += chunk
            if len(pending) >= size * 3 // 4:
                cut = len(pending) - len(pending) % 3  # whole 3-byte groups: no padding inside
                yield base64.b64encode(pending[:cut]).decode("ascii")
                pending = pending[cut:]
        yield base64.b64encode(pending).decode("ascii")

    def gzip_base64(self) -> str:
        """The finished array, gzip in base64, as one string."""
        return "".join(self.base64_pieces())


# --- Image sources: presigned URLs, embedded thumbnails or placeholders ------------------------


class ImageSources:
    """Where each image's `src` comes from, and the origins the CSP must allow for them."""

    def __init__(
        self,
        presign: Callable[[str], str] | None,
        thumbnails: Thumbnailer | None,
        embed: bool,
    ) -> None:
        self._presign = presign
        self._thumbnails = thumbnails
        self.embed = embed  # embedded thumbnails first, URLs only where there is none
        self.origins: set[str] = set()
        self.no_credentials = False
        self.used: Counter[str] = Counter()  # how many images got each kind of src

    def src(self, key: str, etag: str) -> str | None:
        thumb = self._thumbnails.data_uri(key, etag) if self._thumbnails else None
        if thumb and (self.embed or self._presign is None):
            self.used["embedded"] += 1
            return thumb
        url = self._url(key)
        if url:
            self.used["url"] += 1
            return url
        self.used["embedded" if thumb else "none"] += 1
        return thumb

    def _url(self, key: str) -> str | None:
        if self._presign is None:
            return None
        try:
            url = self._presign(key)
        except NoCredentialsError:
            self._presign, self.no_credentials = None, True
            return None
        origin = image_origin(url)
        if origin is None:
            return None
        self.origins.add(origin)
        return url


def image_origin(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, or None when it is anything else.

    The origin goes into the CSP's img-src, so only plain host names and IP literals pass.
    """
    end = url.find("/", url.find("//") + 2)
    origin = url[:end] if end > 0 else url
    return origin if _SAFE_ORIGIN.fullmatch(origin) else None


_SAFE_ORIGIN = re.compile(r"https?://([A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?")


# --- Rendering --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreviewResult:
    path: Path
    groups: int
    bytes: int
    thumbnail_gets: int
    images: dict[str, int]  # embedded / url / none


@dataclass(frozen=True, slots=True)
class _Asset:
    """Inline script or style and the CSP source that allows exactly it."""

    text: Markup
    csp: str


def _asset(name: str) -> _Asset:
    text = (files("bulkimg") / "templates" / name).read_text(encoding="utf-8")
    if "</" in text:  # would end the element early; the assets are ours, so this is a bug
        raise ValueError(f"templates/{name} must not contain '</'")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
    return _Asset(Markup(text), f"'sha256-{digest}'")  # noqa: S704 - our own file


_ENV = Environment(
    loader=PackageLoader("bulkimg", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def content_security_policy(script: str, style: str, image_origins: Iterable[str]) -> str:
    img = " ".join(["data:", *sorted(image_origins)])
    return (
        f"default-src 'none'; script-src {script}; style-src {style}; img-src {img};"
        " base-uri 'none'; form-action 'none'"
    )


@dataclass(frozen=True, slots=True)
class PageInfo:
    """What the header says about the run and the images."""

    generated_at: datetime
    plan: str
    manifest: str | None  # "output/manifest.jsonl (…)" or None before a submit
    images_note: str
    warnings: list[str]
    shop_check: str | None = None  # "output/check/resolution-check.jsonl (…)" when shown


def render_page(cards: CardSet, info: PageInfo, image_origins: Iterable[str] = ()) -> str:
    """The whole page as HTML text."""
    return "".join(page_pieces(cards, info, image_origins))


_CARDS_SLOT = "\0cards-data\0"  # where the cards' base64 goes; NUL is in no value we render


def page_pieces(cards: CardSet, info: PageInfo, image_origins: Iterable[str] = ()) -> Iterator[str]:
    """The page as HTML text in pieces: the cards' data, most of the page, in many."""
    script, style = _asset("preview.js"), _asset("preview.css")
    html = _ENV.get_template("preview.html.j2").render(
        info=info,
        summary=cards.summary,
        filters=FILTERS,
        csp=content_security_policy(script.csp, style.csp, image_origins),
        cards_data=Markup(_CARDS_SLOT),  # noqa: S704 - a constant of ours
        script=script.text,
        style=style.text,
    )
    head, slot, tail = html.partition(_CARDS_SLOT)
    if not slot:
        raise ValueError("templates/preview.html.j2 lost its cards_data")
    yield head
    yield from cards.base64_pieces()
    yield tail


@dataclass(frozen=True, slots=True)
class PreviewOptions:
    """The settings the page is drawn with."""

    output_dir: Path
    cache_dir: Path  # the thumbnail cache's folder
    bucket: str | None
    link_seconds: int  # how long the page's presigned image URLs stay valid
    thumbnails: bool  # embed thumbnails (fetched from S3 once, then cached)
    workers: int  # thumbnail GETs in flight
    max_image_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> PreviewOptions:
        return cls(
            output_dir=settings.output_dir,
            cache_dir=settings.cache_dir,
            bucket=settings.aws_s3_bucket or None,
            link_seconds=settings.presign_seconds,
            thumbnails=settings.preview_thumbnails,
            workers=settings.s3_workers,
            max_image_bytes=settings.max_image_bytes,
        )


def write_preview(
    outputs: OutputSet,
    options: PreviewOptions,
    plan_path: Path,
    client: S3Client | None,
    *,
    manifest_path: Path | None = None,
    failures_path: Path | None = None,
    presign: Callable[[str], str] | None = None,
    lifetime: LinkLifetime | None = None,
    shop_check_path: Path | None = None,
) -> PreviewResult:
    """Render output/preview.html from a plan (and outcomes) into `outputs`, committed with them.

    `presign` and its `lifetime` (default: presigned with `client` now) let `build` sign with
    its own presigner.
    """
    manifest, failures = load_manifest(manifest_path), load_failures(failures_path)
    checked = _shop_check(shop_check_path, plan_path, manifest_path if manifest else None)
    resolved = {g.group_id: g for g in read_resolution(checked)} if checked else {}
    now = datetime.now(UTC)
    cards = CardSet()
    cache = ThumbnailCache(options.cache_dir / CACHE_FILE)
    bucket = options.bucket
    if presign is None and client is not None and bucket:
        lifetime = link_lifetime(client, options.link_seconds, now)
        presign = presigner(client, bucket, lifetime.seconds, clock=lambda: now)
    try:
        sources, thumbnailer = _image_sources(options, client, cache, plan_path, presign)
        for plan in read_plan(plan_path):
            outcome = manifest.get(plan.group_id)
            found = failures.get(plan.group_id, [])
            cards.add(build_card(plan, outcome, found, sources.src, resolved.get(plan.group_id)))
    finally:
        cache.close()
    info = PageInfo(
        generated_at=now,
        plan=str(options.output_dir / PLAN_FILE),
        manifest=_manifest_note(manifest_path) if manifest and manifest_path else None,
        images_note=_images_note(sources, lifetime),
        warnings=_warnings(cards.group_ids, manifest, failures, manifest_path, plan_path),
        shop_check=_manifest_note(checked) if checked else None,
    )
    path = options.output_dir / PREVIEW_FILE
    page, size = outputs.open(path), 0
    for piece in page_pieces(cards, info, sources.origins):
        size += page.write(piece.encode("utf-8"))
    return PreviewResult(path, cards.summary.groups, size, thumbnailer.gets, dict(sources.used))


def _image_sources(
    options: PreviewOptions,
    client: S3Client | None,
    cache: ThumbnailCache,
    plan_path: Path,
    presign: Callable[[str], str] | None,
) -> tuple[ImageSources, Thumbnailer]:
    bucket = options.bucket
    usable = client if bucket else None
    fetch_from = usable if options.thumbnails else None
    thumbnailer = Thumbnailer(cache, bucket, fetch_from, options.workers, options.max_image_bytes)
    if fetch_from is not None:
        thumbnailer.prepare((m.s3_key, m.etag) for p in read_plan(plan_path) for m in p.media)
    # Without --thumbnails and with S3 settings, URLs only: the cache is not even read.
    lookup = thumbnailer if options.thumbnails or presign is None else None
    return ImageSources(presign, lookup, options.thumbnails), thumbnailer


def _images_note(sources: ImageSources, lifetime: LinkLifetime | None) -> str:
    used = sources.used
    parts = []
    if used["embedded"]:
        parts.append(f"{used['embedded']} thumbnails are embedded in this file")
    if used["url"]:
        expiry = lifetime.describe() if lifetime is not None else "an unknown time"
        parts.append(f"{used['url']} images load from presigned S3 links that expire at {expiry}")
    if used["none"]:
        why = "no S3 credentials were found" if sources.no_credentials else "no S3 settings"
        parts.append(f"{used['none']} images show a placeholder ({why})")
    return "; ".join(parts) + "." if parts else "No images."


def _shop_check(check: Path | None, plan: Path, manifest: Path | None) -> Path | None:
    """`plan --against-shop`'s resolution, when it says what the *next* submit of *this* plan
    would do: newer than the plan and than the last run's manifest."""
    if check is None or not check.is_file():
        return None
    at = check.stat().st_mtime
    if at < plan.stat().st_mtime or (manifest is not None and at < manifest.stat().st_mtime):
        return None
    return check


def _manifest_note(manifest_path: Path) -> str:
    at = datetime.fromtimestamp(manifest_path.stat().st_mtime, UTC)
    return f"{manifest_path} ({at:%Y-%m-%d %H:%M} UTC)"


def _warnings(
    group_ids: set[str],
    manifest: dict[str, ManifestRecord],
    failures: dict[str, list[FailureRecord]],
    manifest_path: Path | None,
    plan_path: Path,
) -> list[str]:
    warnings = []
    if manifest and manifest_path and manifest_path.stat().st_mtime < plan_path.stat().st_mtime:
        warnings.append("The manifest is older than the plan: outcomes are from an earlier run.")
    strays = len((set(manifest) | set(failures)) - group_ids)
    if strays:
        groups = "group is" if strays == 1 else "groups are"
        warnings.append(f"{strays} {groups} in the manifest or failures but not in the plan.")
    return warnings
