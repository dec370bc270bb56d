"""A seeded synthetic catalog and the S3 objects that go with it, written once to a cache folder.

Default scale (1.0): 20,000 groups, 100,000 variants, 50,000 numeric Image_SKUs clustered so that
neighbours share S3 folders, ~250,000 objects of which about a fifth are noise. Every object's bytes
are one of a few dozen real image files (JPEG, PNG, WebP, GIF; some JPEGs carry 100-200 KB of ICC
profile before the size marker): tiny pixel data, real headers.

The world folder holds `catalog.sqlite` (nav_items), `objects.tsv` (key, template, kind, Image_SKU)
and `templates/` (the bytes); `meta.json` is written last, so a half-written world is made again.
"""

from __future__ import annotations

import bisect
import io
import itertools
import json
import math
import random
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from bulkimg.s3.keys import folder_for

PREFIX = "sorted-media/"
WORLD_VERSION = 1
LIST_PAGE = 1000

# Kinds of object. CANDIDATE kinds are well-named files of a catalog Image_SKU: bulkimg must read
# each one's header once (the GET floor); the others are decided from the listing alone.
IMAGE = "image"
TOO_SMALL = "too_small"
CANDIDATE_KINDS = frozenset({IMAGE, TOO_SMALL})
NOISE_KINDS = ("wrong_suffix", "wrong_sku", "non_image", TOO_SMALL, "thumbnail")

_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
_EXT_WEIGHTS = {"jpg": 58, "jpeg": 6, "png": 20, "webp": 11, "gif": 5}
_SIZES = ((400, 400), (800, 800), (1200, 1200), (2000, 2000), (1000, 1500))
_ICC_PADDINGS = (100_000, 150_000, 200_000)
ICC_SHARE = 1 / 30  # of JPEG images: a large ICC profile before the SOF marker


@dataclass(frozen=True, slots=True)
class Template:
    """One real image file whose bytes many objects share."""

    name: str  # file name under templates/
    ext: str
    width: int
    height: int
    icc: int = 0


@dataclass(frozen=True, slots=True)
class WorldObject:
    key: str
    template: str
    kind: str
    image_sku: str  # the catalog Image_SKU the file belongs to ("" for other SKUs' files)


@dataclass(frozen=True, slots=True)
class WorldCounts:
    groups: int
    variants: int
    image_skus: int
    objects: int


def target_counts(scale: float) -> WorldCounts:
    def n(base: int) -> int:
        return max(2, round(base * scale))

    return WorldCounts(n(20_000), n(100_000), n(50_000), n(250_000))


class World:
    """A generated world on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.meta: dict[str, object] = json.loads((root / "meta.json").read_text())

    @property
    def catalog(self) -> Path:
        return self.root / "catalog.sqlite"

    def templates(self) -> dict[str, Template]:
        """Every template by file name (format and size of the objects made from it)."""
        return {t.name: t for t in _template_specs()}

    def template_bytes(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted((self.root / "templates").iterdir())}

    def objects(self) -> Iterator[WorldObject]:
        with (self.root / "objects.tsv").open(encoding="utf-8") as lines:
            for line in lines:
                key, template, kind, sku = line.rstrip("\n").split("\t")
                yield WorldObject(key, template, kind, sku)

    def counts(self) -> WorldCounts:
        c = self.meta["counts"]
        assert isinstance(c, dict)
        return WorldCounts(c["groups"], c["variants"], c["image_skus"], c["objects"])

    def subset_catalog(self, name: str, share: float = 1.0, groups: int | None = None) -> Path:
        """A catalog of the first groups (a share of them, or a count): same S3, fewer variants."""
        path = self.root / f"catalog-{name}.sqlite"
        if path.is_file():
            return path
        src = sqlite3.connect(self.catalog)
        ids = [r[0] for r in src.execute("SELECT DISTINCT Web_Product_Group_ID FROM nav_items")]
        ids.sort()
        keep = ids[: groups if groups is not None else max(1, math.ceil(len(ids) * share))]
        temp = path.with_suffix(".tmp")
        temp.unlink(missing_ok=True)
        dst = _new_catalog(temp)
        dst.execute("CREATE TEMP TABLE keep (id TEXT PRIMARY KEY)")
        dst.executemany("INSERT INTO keep VALUES (?)", [(g,) for g in keep])
        rows = src.execute(
            "SELECT No_, Image_SKU, Web_Product_Group_ID, Description FROM nav_items"
        )
        wanted = set(keep)
        dst.executemany(
            "INSERT INTO nav_items VALUES (?,?,?,?)", (r for r in rows if r[2] in wanted)
        )
        dst.commit()
        dst.close()
        src.close()
        temp.replace(path)
        return path

    def catalog_image_skus(self, catalog: Path) -> set[str]:
        db = sqlite3.connect(catalog)
        try:
            return {r[0] for r in db.execute("SELECT DISTINCT Image_SKU FROM nav_items") if r[0]}
        finally:
            db.close()

    def variant_count(self, catalog: Path) -> int:
        db = sqlite3.connect(catalog)
        try:
            return int(db.execute("SELECT COUNT(*) FROM nav_items").fetchone()[0])
        finally:
            db.close()


def world_dir(cache: Path, scale: float, seed: int) -> Path:
    return cache / f"world-v{WORLD_VERSION}-scale{scale:g}-seed{seed}"


def ensure_world(cache: Path, scale: float, seed: int, say: object = print) -> World:
    """The world for (scale, seed), generated now unless a complete one is cached."""
    root = world_dir(cache, scale, seed)
    if (root / "meta.json").is_file():
        return World(root)
    root.mkdir(parents=True, exist_ok=True)
    assert callable(say)
    say(f"generating world {root.name}")
    _generate(root, scale, seed)
    return World(root)


# -- generation --------------------------------------------------------------------------------


def _generate(root: Path, scale: float, seed: int) -> None:
    rng = random.Random(seed)
    want = target_counts(scale)
    templates = _write_templates(root / "templates")
    clusters = _sku_clusters(rng, want.image_skus)
    skus = sorted(s for cluster in clusters for s in cluster[1])
    objects = 0
    kinds: Counter[str] = Counter()
    with (root / "objects.tsv").open("w", encoding="utf-8") as out:
        for folder_prefix, members in clusters:
            for obj in _folder_objects(rng, folder_prefix, members, templates):
                out.write(f"{obj.key}\t{obj.template}\t{obj.kind}\t{obj.image_sku}\n")
                objects += 1
                kinds[obj.kind] += 1
    groups, variants = _write_catalog(root / "catalog.sqlite", rng, skus, want)
    meta = {
        "version": WORLD_VERSION,
        "scale": scale,
        "seed": seed,
        "counts": {
            "groups": groups,
            "variants": variants,
            "image_skus": len(skus),
            "objects": objects,
        },
        "kinds": dict(sorted(kinds.items())),
    }
    (root / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def _image(ext: str, width: int, height: int, icc: int = 0, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    color = (rng.randrange(40, 220), rng.randrange(40, 220), rng.randrange(40, 220))
    image = Image.new("RGB", (width, height), color)
    out = io.BytesIO()
    fmt = _FORMATS[ext]
    if fmt == "JPEG":
        extra = {"icc_profile": rng.randbytes(icc)} if icc else {}
        image.save(out, fmt, quality=40, **extra)
    elif fmt == "GIF":
        image.convert("P").save(out, fmt)
    elif fmt == "WEBP":
        image.save(out, fmt, quality=40)
    else:
        image.save(out, fmt, optimize=False)
    return out.getvalue()


def _template_specs() -> list[Template]:
    specs = [
        Template(f"{fmt}-{w}x{h}.{fmt}", fmt, w, h)
        for fmt in ("jpg", "png", "webp", "gif")
        for (w, h) in _SIZES
    ]
    specs += [Template(f"jpg-1200x1200-icc{p}.jpg", "jpg", 1200, 1200, p) for p in _ICC_PADDINGS]
    specs += [Template(f"small-{fmt}-150x120.{fmt}", fmt, 150, 120) for fmt in ("jpg", "png")]
    return specs


def _write_templates(folder: Path) -> dict[str, list[Template]]:
    """Template files by role: `<ext>` images, `icc` JPEGs, `small` images, `text`."""
    folder.mkdir(parents=True, exist_ok=True)
    roles: dict[str, list[Template]] = defaultdict(list)
    for i, spec in enumerate(_template_specs()):
        (folder / spec.name).write_bytes(_image(spec.ext, spec.width, spec.height, spec.icc, i))
        role = "small" if spec.name.startswith("small") else ("icc" if spec.icc else spec.ext)
        roles[role].append(spec)
    (folder / "notes.txt").write_bytes(b"retouch notes: crop tighter on the stone\n" * 4)
    roles["text"].append(Template("notes.txt", "txt", 0, 0))
    roles["jpeg"] = roles["jpg"]
    return roles


def _sku_clusters(rng: random.Random, count: int) -> list[tuple[int, list[str]]]:
    """(6-digit folder number, Image_SKUs in that folder): 7-digit neighbours, some 6-digit."""
    clusters: list[tuple[int, list[str]]] = []
    used: set[int] = set()
    made = 0
    while made < count:
        folder = rng.randrange(100_000, 1_000_000)
        if folder in used:
            continue
        used.add(folder)
        k = min(rng.choice((1, 2, 3, 4, 5, 6, 8, 10)), count - made)
        members = [str(folder * 10 + d) for d in sorted(rng.sample(range(10), k))]
        if k > 1 and rng.random() < 0.1:
            members[0] = str(folder)  # a 6-digit SKU sharing the folder of its 7-digit peers
        clusters.append((folder, members))
        made += len(members)
    clusters.sort()
    return clusters


def _pick_ext(rng: random.Random) -> str:
    return rng.choices(list(_EXT_WEIGHTS), weights=list(_EXT_WEIGHTS.values()))[0]


def _folder_objects(
    rng: random.Random, folder_number: int, members: list[str], templates: dict[str, list[Template]]
) -> Iterator[WorldObject]:
    folder = folder_for(members[0], PREFIX)
    taken = set(members)
    keys: set[str] = set()
    for obj in _folder_candidates(rng, folder, folder_number, members, taken, templates):
        if obj.key not in keys:  # two noise files may draw the same name
            keys.add(obj.key)
            yield obj


def _folder_candidates(
    rng: random.Random,
    folder: str,
    folder_number: int,
    members: list[str],
    taken: set[str],
    templates: dict[str, list[Template]],
) -> Iterator[WorldObject]:
    for sku in members:
        if rng.random() < 0.02:  # no image at all: a "No images found" variant
            continue
        count = rng.choice((1, 2, 3, 3, 4, 4, 4, 5, 5, 6, 8))
        for n in range(1, count + 1):
            ext = _pick_ext(rng)
            if ext in ("jpg", "jpeg") and rng.random() < ICC_SHARE:
                template = rng.choice(templates["icc"])
            else:
                template = rng.choice(templates[ext])
            if rng.random() < 0.05:
                ext = ext.upper()
            name = f"{sku}-{n}a-{rng.randrange(10_000, 99_999)}.{ext}"
            yield WorldObject(folder + name, template.name, IMAGE, sku)
        for _ in range(rng.choice((0, 0, 1, 1, 1, 1, 2, 2))):
            yield _noise(rng, folder, folder_number, sku, taken, templates)


def _noise(
    rng: random.Random,
    folder: str,
    folder_number: int,
    sku: str,
    taken: set[str],
    templates: dict[str, list[Template]],
) -> WorldObject:
    kind = rng.choice(NOISE_KINDS)
    image = rng.choice(templates["jpg"]).name
    tail = rng.randrange(10_000, 99_999)
    if kind == "wrong_suffix":
        return WorldObject(f"{folder}{sku}-1{rng.choice('bc')}-{tail}.jpg", image, kind, "")
    if kind == "non_image":
        ext = rng.choice(("txt", "pdf", "psd"))
        return WorldObject(f"{folder}{sku}-2a-{tail}.{ext}", "notes.txt", kind, "")
    if kind == TOO_SMALL:
        small = rng.choice(templates["small"])
        return WorldObject(f"{folder}{sku}-9a-{tail}.{small.ext}", small.name, kind, sku)
    if kind == "thumbnail":
        return WorldObject(f"{folder}{sku}-thumbnail.jpg", image, kind, "")
    # An Image_SKU that is not in the catalog (a discontinued neighbour) but shares the folder.
    free = [s for s in (str(folder_number * 10 + d) for d in range(10)) if s not in taken]
    other = rng.choice(free) if free else f"{folder_number}{rng.randrange(10, 99)}"
    return WorldObject(f"{folder}{other}-1a-{tail}.jpg", image, "wrong_sku", "")


def _new_catalog(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE nav_items (No_ TEXT PRIMARY KEY, Image_SKU TEXT,"
        " Web_Product_Group_ID TEXT, Description TEXT)"
    )
    return db


def _write_catalog(
    path: Path, rng: random.Random, skus: list[str], want: WorldCounts
) -> tuple[int, int]:
    """Groups of neighbouring Image_SKUs; every SKU has a variant, the rest spread at random."""
    n_groups = min(want.groups, len(skus))
    cuts = sorted(rng.sample(range(1, len(skus)), n_groups - 1)) if n_groups > 1 else []
    bounds = [0, *cuts, len(skus)]
    groups = [skus[a:b] for a, b in itertools.pairwise(bounds)]
    per_sku = Counter({s: 1 for s in skus})
    extra = max(0, want.variants - len(skus))
    per_sku.update(rng.choices(skus, k=extra))
    path.unlink(missing_ok=True)
    db = _new_catalog(path)
    rows: list[tuple[str, str, str, str]] = []
    number = 900_000_000
    for g, members in enumerate(groups):
        group_id = f"{'LGD' if g % 3 else 'GID'}-{100_000 + g}"
        title = f"{rng.choice(('Moissanite', 'Lab Diamond'))} {rng.choice(('Ring', 'Pendant'))} {g}"
        images = [s for s in members for _ in range(per_sku[s])]
        if g and rng.random() < 0.05:  # a variant showing the previous group's images
            images.append(groups[g - 1][0])
        for image_sku in images:
            number += 1
            value = "" if rng.random() < 0.005 else image_sku
            rows.append((str(number), value, group_id, title))
        if len(rows) >= 10_000:
            db.executemany("INSERT INTO nav_items VALUES (?,?,?,?)", rows)
            rows.clear()
    db.executemany("INSERT INTO nav_items VALUES (?,?,?,?)", rows)
    db.commit()
    variants = int(db.execute("SELECT COUNT(*) FROM nav_items").fetchone()[0])
    db.close()
    return len(groups), variants


# -- the floor ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Floor:
    """The fewest S3 requests a build of `catalog` can make (cold: every candidate read once)."""

    list_pages: int
    candidate_gets: int
    folders_needed: int

    @property
    def cold(self) -> int:
        return self.list_pages + self.candidate_gets


def floor_for(world: World, image_skus: set[str], changed_keys: set[str] | None = None) -> Floor:
    """LIST pages to see every needed folder once (the skip-scan optimum over the bucket's sorted
    keys) plus one GET per candidate (or per changed candidate)."""
    needed = {folder_for(s, PREFIX) for s in image_skus}
    keys: list[str] = []
    reads: set[tuple[str, str]] = set()  # (Image_SKU, variation): an older twin is not read
    for obj in world.objects():
        keys.append(obj.key)
        wanted = obj.kind in CANDIDATE_KINDS and obj.image_sku in image_skus
        if wanted and (changed_keys is None or obj.key in changed_keys):
            variation = obj.key[obj.key.rfind("/") + len(obj.image_sku) + 2 :].split("-", 1)[0]
            reads.add((obj.image_sku, variation))
    keys.sort()
    return Floor(skip_scan_pages(keys, needed), len(reads), len(needed))


def skip_scan_pages(keys: list[str], folders: set[str], page: int = LIST_PAGE) -> int:
    """The fewest LIST pages that show every key of every folder and that each folder ended.

    A page holds up to `page` consecutive keys of the sorted `keys`, starting after any key
    (StartAfter). A folder is seen whole when the pages show its keys without a gap and then a
    key past it (or the end of the listing). Greedy: the next page starts at the first key not
    yet shown that must be; covering points of a line with fixed-length windows this way is
    optimal. One chain: bulkimg's parallel chains may each take one page more.
    """
    count = len(keys)
    pages = 0
    end = 0  # the last page showed keys[.. end)
    for folder in sorted(folders):
        first = bisect.bisect_left(keys, folder)
        past = bisect.bisect_left(keys, folder[:-1] + chr(ord(folder[-1]) + 1))
        if pages and (end > past or end == count):
            continue
        start = end if pages and first < end else first
        while True:
            pages += 1
            start += page
            if start > past or start >= count:
                break
        end = min(start, count)
    return pages
