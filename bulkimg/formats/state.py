"""What is on the shop's products as bulkimg last saw it, kept in one SQLite file (default
output/state.sqlite).

Schema (version 1; `PRAGMA user_version`; MIGRATIONS upgrades older files):

    meta(key PRIMARY KEY, value)                      -- 'shop': the shop the state belongs to
    products(handle PRIMARY KEY, product_id, updated_at)
    media(media_id PRIMARY KEY, handle, position, image_sku, variation, s3_key, etag, status,
          updated_at)                                 -- every image of the product; image_sku
                                                      -- NULL: not bulkimg's (always kept)
    variants(sku PRIMARY KEY, handle, variant_id, media_id, updated_at)

An image is identified by (Image_SKU, variation) and its S3 ETag. Updated after every submit
from its product export (run/outcome.py), and rebuilt from the shop by `bulkimg reconcile`
(shop/state.py tells which images on a product are bulkimg's).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bulkimg.errors import ConfigError
from bulkimg.formats.run import now_iso

SCHEMA_VERSION = 1


def _v1(db: sqlite3.Connection) -> None:
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE products (
            handle TEXT PRIMARY KEY, product_id TEXT NOT NULL, updated_at TEXT NOT NULL);
        CREATE TABLE media (
            media_id TEXT PRIMARY KEY, handle TEXT NOT NULL, position INTEGER NOT NULL,
            image_sku TEXT, variation INTEGER, s3_key TEXT,
            etag TEXT, status TEXT NOT NULL, updated_at TEXT NOT NULL);
        CREATE INDEX media_by_handle ON media (handle, position);
        CREATE TABLE variants (
            sku TEXT PRIMARY KEY, handle TEXT NOT NULL, variant_id TEXT NOT NULL,
            media_id TEXT, updated_at TEXT NOT NULL);
        """
    )


# MIGRATIONS[n] takes a file at version n to version n + 1.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1]


@dataclass(frozen=True, slots=True)
class KnownMedia:
    """An image on a product: bulkimg's (it knows the S3 object) or someone else's."""

    media_id: str
    image_sku: str | None  # None: not uploaded by bulkimg
    variation: int | None
    etag: str | None  # full ETag, or its first 8 characters when rebuilt from the shop
    status: str
    s3_key: str | None = None

    @property
    def ours(self) -> bool:
        return self.image_sku is not None

    def same_object(self, image_sku: str, variation: int, etag: str) -> bool:
        if self.etag is None or (self.image_sku, self.variation) != (image_sku, variation):
            return False
        short = min(len(self.etag), len(etag), 8)
        return short > 0 and self.etag[:short] == etag[:short]


@dataclass(slots=True)
class ProductState:
    """One product as bulkimg last saw it."""

    handle: str
    product_id: str
    media: list[KnownMedia] = field(default_factory=list)
    variants: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # sku: (id, media)


class StateStore:
    """The state file; used from one thread."""

    def __init__(self, path: Path, shop: str | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path)
        self._migrate()
        if shop is not None:
            self._check_shop(shop)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise ConfigError(f"{self.path} was written by a newer bulkimg (schema {version})")
        for number in range(version, len(MIGRATIONS)):
            with self._db:
                MIGRATIONS[number](self._db)
                self._db.execute(f"PRAGMA user_version={number + 1}")

    def _check_shop(self, shop: str) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='shop'").fetchone()
        if row is None:
            with self._db:
                self._db.execute("INSERT INTO meta VALUES ('shop', ?)", (shop,))
        elif row[0] != shop:
            raise ConfigError(
                f"{self.path} records the shop {row[0]}, not {shop}: use another state file"
            )

    # -- reading ------------------------------------------------------------------------------

    def product(self, handle: str) -> ProductState | None:
        row = self._db.execute(
            "SELECT product_id FROM products WHERE handle=?", (handle,)
        ).fetchone()
        if row is None:
            return None
        state = ProductState(handle, row[0])
        for media_id, sku, variation, etag, status, key in self._db.execute(
            "SELECT media_id, image_sku, variation, etag, status, s3_key FROM media"
            " WHERE handle=? ORDER BY position",
            (handle,),
        ):
            state.media.append(KnownMedia(media_id, sku, variation, etag, status, key))
        for sku, variant_id, media_id in self._db.execute(
            "SELECT sku, variant_id, media_id FROM variants WHERE handle=?", (handle,)
        ):
            state.variants[sku] = (variant_id, media_id)
        return state

    def counts(self) -> dict[str, int]:
        return {
            table: int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in ("products", "media", "variants")
        }

    # -- writing ------------------------------------------------------------------------------

    def replace_products(self, products: Iterable[ProductState]) -> None:
        """Record products as they are now (their media and variants replace what was known), in
        one transaction: one commit for a whole run, not one per product (each waits for the
        disk)."""
        now = now_iso()
        with self._db:
            for product in products:
                self._replace(product, now)

    def _replace(self, product: ProductState, now: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO products VALUES (?,?,?)",
            (product.handle, product.product_id, now),
        )
        self._db.execute("DELETE FROM media WHERE handle=?", (product.handle,))
        self._db.executemany(
            "INSERT OR REPLACE INTO media VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    *(m.media_id, product.handle, position, m.image_sku, m.variation),
                    *(m.s3_key, m.etag, m.status, now),
                )
                for position, m in enumerate(product.media, start=1)
            ],
        )
        self._db.execute("DELETE FROM variants WHERE handle=?", (product.handle,))
        self._db.executemany(
            "INSERT OR REPLACE INTO variants VALUES (?,?,?,?,?)",
            [
                (sku, product.handle, variant_id, media_id, now)
                for sku, (variant_id, media_id) in product.variants.items()
            ],
        )

    def replace_all(self, products: Iterable[ProductState]) -> dict[str, int]:
        """Forget everything and record `products` (a whole shop), in one transaction; the
        counts by table."""
        now = now_iso()
        with self._db:
            self._clear()
            for product in products:
                self._replace(product, now)
        return self.counts()

    def clear(self) -> None:
        with self._db:
            self._clear()

    def _clear(self) -> None:
        for table in ("products", "media", "variants"):
            self._db.execute(f"DELETE FROM {table}")
