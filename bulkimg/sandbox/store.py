"""The sandbox shop's state: one SQLite file (products, options, variants, media, variant-media
links, staged uploads, bulk operations) and a folder beside it for staged files and results.

One connection, guarded by a lock: every method is safe to call from any thread, and a
``transaction()`` block is atomic and isolated from all other threads (a productSet that ends
with userErrors rolls back and changes nothing).
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bulkimg.statuses import BulkOperationStatus, BulkOperationType, MediaStatus

_TABLES: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS products (
    id INTEGER PRIMARY KEY AUTOINCREMENT, handle TEXT NOT NULL UNIQUE, title TEXT NOT NULL,
    status TEXT NOT NULL, vendor TEXT NOT NULL, product_type TEXT NOT NULL,
    description_html TEXT NOT NULL, tags TEXT NOT NULL, created_at REAL NOT NULL,
    updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS options (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id INTEGER NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, name TEXT NOT NULL, option_values TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS variants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id INTEGER NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, sku TEXT, price TEXT NOT NULL, compare_at_price TEXT,
    barcode TEXT, selected TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS variants_by_product ON variants(product_id);
CREATE INDEX IF NOT EXISTS variants_by_sku ON variants(sku);
CREATE TABLE IF NOT EXISTS media (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id INTEGER NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, alt TEXT, status TEXT NOT NULL, filename TEXT NOT NULL,
    source_url TEXT, width INTEGER, height INTEGER, mime_type TEXT, error_code TEXT,
    error_details TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS media_by_product ON media(product_id);
CREATE INDEX IF NOT EXISTS media_by_filename ON media(filename);
CREATE TABLE IF NOT EXISTS variant_creations (created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS variant_creations_by_time ON variant_creations(created_at);
CREATE TABLE IF NOT EXISTS variant_media (
    variant_id INTEGER PRIMARY KEY REFERENCES variants(id) ON DELETE CASCADE,
    media_id INTEGER NOT NULL REFERENCES media(id) ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS staged_files (
    key TEXT PRIMARY KEY, filename TEXT NOT NULL, mime_type TEXT NOT NULL,
    stored_as TEXT NOT NULL, size INTEGER, uploaded_at REAL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS bulk_operations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, status TEXT NOT NULL,
    error_code TEXT, query TEXT NOT NULL, staged_key TEXT, client_identifier TEXT,
    group_objects INTEGER NOT NULL, seed INTEGER NOT NULL, created_at REAL NOT NULL,
    completed_at REAL, object_count INTEGER NOT NULL DEFAULT 0,
    root_object_count INTEGER NOT NULL DEFAULT 0, result_lines INTEGER NOT NULL DEFAULT 0,
    file_size INTEGER, ended_at REAL);
CREATE TABLE IF NOT EXISTS detached_media (
    media_id INTEGER PRIMARY KEY REFERENCES media(id) ON DELETE CASCADE);
CREATE TABLE IF NOT EXISTS media_sizes (
    media_id INTEGER PRIMARY KEY REFERENCES media(id) ON DELETE CASCADE,
    file_size INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, product_id INTEGER NOT NULL, moves TEXT NOT NULL, due_at REAL NOT NULL,
    done INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS variant_inventory (
    variant_id INTEGER PRIMARY KEY REFERENCES variants(id) ON DELETE CASCADE,
    quantity INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS metafields (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id INTEGER NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    namespace TEXT NOT NULL, key TEXT NOT NULL, type TEXT NOT NULL, value TEXT NOT NULL,
    UNIQUE (product_id, namespace, key));
"""

# Files removed from their product (fileUpdate referencesToRemove) stay in the shop's Files
# library: their media row is kept, listed in detached_media, and belongs to no product's media.
_ATTACHED: Final = " AND id NOT IN (SELECT media_id FROM detached_media)"

# Shopify's ids are large numbers; starting there catches clients that assume 32-bit ids.
_ID_BASES: Final = {
    "products": 7_100_000_000_000,
    "options": 9_100_000_000_000,
    "variants": 4_400_000_000_000,
    "media": 3_100_000_000_000,
    "bulk_operations": 5_300_000_000_000,
    "metafields": 2_600_000_000_000,
}


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    handle: str
    title: str
    status: str
    vendor: str
    product_type: str
    description_html: str
    tags: tuple[str, ...]
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class ProductOption:
    id: int
    product_id: int
    position: int
    name: str
    values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VariantRow:
    id: int
    product_id: int
    position: int
    sku: str | None
    price: str
    compare_at_price: str | None
    barcode: str | None
    selected: tuple[tuple[str, str], ...]
    """(option name, value) in option order."""
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Media:
    id: int
    product_id: int
    position: int
    alt: str | None
    status: MediaStatus
    filename: str
    source_url: str | None
    """The URL to fetch while UPLOADED/PROCESSING; forgotten afterwards, as Shopify does."""
    width: int | None
    height: int | None
    mime_type: str | None
    error_code: str | None
    error_details: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class StagedFile:
    key: str
    filename: str
    mime_type: str
    stored_as: str
    size: int | None
    uploaded_at: float | None


@dataclass(frozen=True, slots=True)
class BulkOperation:
    id: int
    type: BulkOperationType
    status: BulkOperationStatus
    error_code: str | None
    query: str
    staged_key: str | None
    client_identifier: str | None
    group_objects: bool
    seed: int
    created_at: float
    completed_at: float | None
    object_count: int
    root_object_count: int
    result_lines: int
    file_size: int | None
    ended_at: float | None
    """When it became COMPLETED, FAILED or CANCELED (completedAt shows only for COMPLETED)."""


@dataclass(frozen=True, slots=True)
class Job:
    """An asynchronous productReorderMedia: ``moves`` (media id, new 0-based position)."""

    id: str
    product_id: int
    moves: tuple[tuple[int, int], ...]
    due_at: float
    done: bool


@dataclass(frozen=True, slots=True)
class NewVariant:
    """A variant to insert or update (``id`` None: insert)."""

    id: int | None
    position: int
    sku: str | None
    price: str
    compare_at_price: str | None
    barcode: str | None
    selected: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Metafield:
    """A product metafield (written only by the seeder: productSet refuses metafields)."""

    id: int
    product_id: int
    namespace: str
    key: str
    type: str
    value: str


@dataclass(slots=True)
class SeedRows:
    """Rows with their ids already chosen, written at once by :meth:`Store.insert_seed`."""

    products: list[Product]
    options: list[ProductOption]
    variants: list[VariantRow]
    media: list[Media]
    variant_media: list[tuple[int, int]]
    """(variant id, media id)"""
    inventory: list[tuple[int, int]]
    """(variant id, quantity)"""
    metafields: list[Metafield]
    media_sizes: list[tuple[int, int]] = field(default_factory=list)
    """(media id, bytes of its original file: MediaImage.originalSource.fileSize)"""


class Store:
    """The shop's state at ``path`` (a SQLite file; its files live in ``<path>-files/``)."""

    def __init__(self, path: Path, result_url_lifetime: float | None = None) -> None:
        """``result_url_lifetime``: COMPLETED operations that ended longer ago read EXPIRED."""
        self.path = path
        self._result_url_lifetime = result_url_lifetime
        self.files_dir = path.with_name(path.name + "-files")
        (self.files_dir / "staged").mkdir(parents=True, exist_ok=True)
        (self.files_dir / "results").mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._db.executescript(_TABLES)
            columns = {r["name"] for r in self._db.execute("PRAGMA table_info(bulk_operations)")}
            if "ended_at" not in columns:  # a state file from before the column
                self._db.execute("ALTER TABLE bulk_operations ADD COLUMN ended_at REAL")
                self._db.execute("UPDATE bulk_operations SET ended_at = completed_at")
        with self.transaction():
            for table, base in _ID_BASES.items():
                self._db.execute(
                    "INSERT INTO sqlite_sequence(name, seq) SELECT ?, ? WHERE NOT EXISTS "
                    "(SELECT 1 FROM sqlite_sequence WHERE name = ?)",
                    (table, base, table),
                )

    def close(self) -> None:
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """An atomic block; nested blocks join the outer one."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    def _all(self, sql: str, args: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _one(self, sql: str, args: Sequence[object] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, args).fetchone()
            return row

    def _run(self, sql: str, args: Sequence[object] = ()) -> int:
        """Execute a write; the id of an inserted row."""
        with self._lock:
            cursor = self._db.execute(sql, args)
            return cursor.lastrowid or 0

    def _delete_except(
        self, table: str, product_id: int, keep: Sequence[int], also: str = ""
    ) -> None:
        """Delete the product's rows of ``table`` whose id is not in ``keep`` (and that match
        ``also``, an SQL condition); an empty ``keep`` deletes them all (``id NOT IN (NULL)``
        would match no row at all)."""
        assert table in ("options", "variants", "media"), table
        if not keep:
            self._run(f"DELETE FROM {table} WHERE product_id = ?{also}", (product_id,))
            return
        marks = ",".join("?" * len(keep))
        self._run(
            f"DELETE FROM {table} WHERE product_id = ? AND id NOT IN ({marks}){also}",
            (product_id, *keep),
        )

    # --- meta ---------------------------------------------------------------------------

    def secret(self, name: str) -> bytes:
        """A random key made once and kept (URL signatures stay valid across restarts)."""
        with self.transaction():
            row = self._one("SELECT value FROM meta WHERE key = ?", (name,))
            if row is not None:
                return bytes.fromhex(row["value"])
            value = secrets.token_bytes(32)
            self._run("INSERT INTO meta(key, value) VALUES (?, ?)", (name, value.hex()))
            return value

    # --- products -----------------------------------------------------------------------

    def product(self, product_id: int) -> Product | None:
        row = self._one("SELECT * FROM products WHERE id = ?", (product_id,))
        return _product(row) if row else None

    def product_by_handle(self, handle: str) -> Product | None:
        row = self._one("SELECT * FROM products WHERE handle = ?", (handle,))
        return _product(row) if row else None

    def products(self) -> list[Product]:
        return [_product(row) for row in self._all("SELECT * FROM products ORDER BY id")]

    def product_ids_with_sku(self, sku: str) -> set[int]:
        rows = self._all("SELECT DISTINCT product_id FROM variants WHERE sku = ?", (sku,))
        return {int(row["product_id"]) for row in rows}

    def insert_product(self, product: Product) -> int:
        return self._run(
            "INSERT INTO products(handle, title, status, vendor, product_type, description_html,"
            " tags, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*_product_values(product), product.created_at, product.updated_at),
        )

    def update_product(self, product: Product) -> None:
        self._run(
            "UPDATE products SET handle = ?, title = ?, status = ?, vendor = ?, product_type = ?,"
            " description_html = ?, tags = ?, updated_at = ? WHERE id = ?",
            (*_product_values(product), product.updated_at, product.id),
        )

    # --- options ------------------------------------------------------------------------

    def options(self, product_id: int) -> list[ProductOption]:
        rows = self._all(
            "SELECT * FROM options WHERE product_id = ? ORDER BY position, id", (product_id,)
        )
        return [
            ProductOption(
                int(r["id"]),
                int(r["product_id"]),
                int(r["position"]),
                r["name"],
                tuple(json.loads(r["option_values"])),
            )
            for r in rows
        ]

    def replace_options(
        self, product_id: int, options: Sequence[tuple[int | None, str, Sequence[str]]]
    ) -> None:
        """Make the product's options exactly ``(id or None, name, values)``, in order."""
        self._delete_except("options", product_id, [o for o, _, _ in options if o is not None])
        for position, (option_id, name, values) in enumerate(options, start=1):
            encoded = json.dumps(list(values))
            if option_id is None:
                self._run(
                    "INSERT INTO options(product_id, position, name, option_values)"
                    " VALUES (?, ?, ?, ?)",
                    (product_id, position, name, encoded),
                )
            else:
                self._run(
                    "UPDATE options SET position = ?, name = ?, option_values = ? WHERE id = ?",
                    (position, name, encoded, option_id),
                )

    # --- variants -----------------------------------------------------------------------

    def variants(self, product_id: int) -> list[VariantRow]:
        rows = self._all(
            "SELECT * FROM variants WHERE product_id = ? ORDER BY position, id", (product_id,)
        )
        return [_variant(row) for row in rows]

    def variant(self, variant_id: int) -> VariantRow | None:
        row = self._one("SELECT * FROM variants WHERE id = ?", (variant_id,))
        return _variant(row) if row else None

    def replace_variants(
        self, product_id: int, variants: Sequence[NewVariant], now: float
    ) -> list[int]:
        """Make the product's variants exactly ``variants``; their ids, in order."""
        self._delete_except("variants", product_id, [v.id for v in variants if v.id is not None])
        ids = []
        for v in variants:
            values = (
                v.position,
                v.sku,
                v.price,
                v.compare_at_price,
                v.barcode,
                json.dumps(v.selected),
            )
            if v.id is None:
                self._run("INSERT INTO variant_creations(created_at) VALUES (?)", (now,))
                ids.append(
                    self._run(
                        "INSERT INTO variants(product_id, position, sku, price, compare_at_price,"
                        " barcode, selected, created_at, updated_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (product_id, *values, now, now),
                    )
                )
            else:
                self._run(
                    "UPDATE variants SET position = ?, sku = ?, price = ?, compare_at_price = ?,"
                    " barcode = ?, selected = ?, updated_at = ? WHERE id = ?",
                    (*values, now, v.id),
                )
                ids.append(v.id)
        return ids

    def variant_count(self) -> int:
        """Variants in the whole shop."""
        row = self._one("SELECT COUNT(*) AS n FROM variants")
        return int(row["n"]) if row else 0

    def variants_created_since(self, since: float) -> int:
        """Variants created at or after ``since`` (deleted ones included)."""
        row = self._one(
            "SELECT COUNT(*) AS n FROM variant_creations WHERE created_at >= ?", (since,)
        )
        return int(row["n"]) if row else 0

    # --- media --------------------------------------------------------------------------

    def media(self, media_id: int) -> Media | None:
        row = self._one("SELECT * FROM media WHERE id = ?", (media_id,))
        return _media(row) if row else None

    def media_of_product(self, product_id: int) -> list[Media]:
        rows = self._all(
            "SELECT * FROM media WHERE product_id = ? AND id NOT IN"
            " (SELECT media_id FROM detached_media) ORDER BY position, id",
            (product_id,),
        )
        return [_media(row) for row in rows]

    def media_to_process(self) -> list[int]:
        rows = self._all(
            "SELECT id FROM media WHERE status IN (?, ?) ORDER BY id",
            (MediaStatus.UPLOADED, MediaStatus.PROCESSING),
        )
        return [int(row["id"]) for row in rows]

    def insert_media(
        self,
        product_id: int,
        position: int,
        alt: str | None,
        filename: str,
        source_url: str,
        now: float,
        failure: tuple[str, str] | None = None,
    ) -> int:
        """A new media, UPLOADED with its source to fetch, or FAILED with ``(code, details)``."""
        status = MediaStatus.FAILED if failure else MediaStatus.UPLOADED
        code, details = failure or (None, None)
        return self._run(
            "INSERT INTO media(product_id, position, alt, status, filename, source_url,"
            " error_code, error_details, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                product_id,
                position,
                alt,
                status,
                filename,
                None if failure else source_url,
                code,
                details,
                now,
                now,
            ),
        )

    def delete_media_except(self, product_id: int, keep: Iterable[int]) -> None:
        # Files removed from this product stay in the library: never deleted from here.
        self._delete_except("media", product_id, list(keep), also=_ATTACHED)

    def update_media_placement(
        self, media_id: int, position: int, alt: str | None, now: float
    ) -> None:
        self._run(
            "UPDATE media SET position = ?, alt = ?, updated_at = ? WHERE id = ?",
            (position, alt, now, media_id),
        )

    def start_processing(self, media_id: int) -> Media | None:
        """UPLOADED → PROCESSING; the media, or None when it is gone or already done."""
        with self.transaction():
            media = self.media(media_id)
            if media is None or media.status not in (MediaStatus.UPLOADED, MediaStatus.PROCESSING):
                return None
            self._run(
                "UPDATE media SET status = ?, updated_at = ? WHERE id = ?",
                (MediaStatus.PROCESSING, time.time(), media_id),
            )
            return media

    def finish_media(
        self,
        media_id: int,
        *,
        size: tuple[int, int, str] | None = None,
        failure: tuple[str, str] | None = None,
    ) -> None:
        """PROCESSING → READY with ``(width, height, mime type)`` or FAILED with
        ``(code, details)``; the source URL is forgotten either way."""
        if size is not None:
            self._run(
                "UPDATE media SET status = ?, width = ?, height = ?, mime_type = ?,"
                " source_url = NULL, updated_at = ? WHERE id = ? AND status = ?",
                (MediaStatus.READY, *size, time.time(), media_id, MediaStatus.PROCESSING),
            )
        elif failure is not None:
            self._run(
                "UPDATE media SET status = ?, error_code = ?, error_details = ?,"
                " source_url = NULL, updated_at = ? WHERE id = ? AND status = ?",
                (MediaStatus.FAILED, *failure, time.time(), media_id, MediaStatus.PROCESSING),
            )

    # --- variant media ------------------------------------------------------------------

    def variant_media(self, variant_id: int) -> int | None:
        row = self._one("SELECT media_id FROM variant_media WHERE variant_id = ?", (variant_id,))
        return int(row["media_id"]) if row else None

    def link_variant_media(self, variant_id: int, media_id: int) -> None:
        self._run(
            "INSERT OR REPLACE INTO variant_media(variant_id, media_id) VALUES (?, ?)",
            (variant_id, media_id),
        )

    # --- staged uploads -----------------------------------------------------------------

    def staged_path(self, stored_as: str) -> Path:
        return self.files_dir / "staged" / stored_as

    def create_staged(self, key: str, filename: str, mime_type: str, stored_as: str) -> None:
        self._run(
            "INSERT INTO staged_files(key, filename, mime_type, stored_as, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (key, filename, mime_type, stored_as, time.time()),
        )

    def staged(self, key: str) -> StagedFile | None:
        row = self._one("SELECT * FROM staged_files WHERE key = ?", (key,))
        if row is None:
            return None
        return StagedFile(
            row["key"],
            row["filename"],
            row["mime_type"],
            row["stored_as"],
            row["size"],
            row["uploaded_at"],
        )

    def mark_uploaded(self, key: str, size: int) -> None:
        self._run(
            "UPDATE staged_files SET size = ?, uploaded_at = ? WHERE key = ?",
            (size, time.time(), key),
        )

    # --- bulk operations ----------------------------------------------------------------

    def result_path(self, operation_id: int) -> Path:
        return self.files_dir / "results" / f"{operation_id}.jsonl"

    def create_bulk_operation(
        self,
        type_: BulkOperationType,
        query: str,
        *,
        staged_key: str | None,
        client_identifier: str | None,
        group_objects: bool,
        seed: int,
        limit: int,
    ) -> BulkOperation | None:
        """A new CREATED operation; None when ``limit`` operations are already active."""
        with self.transaction():
            row = self._one(
                "SELECT COUNT(*) AS n FROM bulk_operations WHERE status IN (?, ?, ?)",
                (
                    BulkOperationStatus.CREATED,
                    BulkOperationStatus.RUNNING,
                    BulkOperationStatus.CANCELING,
                ),
            )
            if row is not None and int(row["n"]) >= limit:
                return None
            new_id = self._run(
                "INSERT INTO bulk_operations(type, status, query, staged_key, client_identifier,"
                " group_objects, seed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    type_,
                    BulkOperationStatus.CREATED,
                    query,
                    staged_key,
                    client_identifier,
                    int(group_objects),
                    seed,
                    time.time(),
                ),
            )
            operation = self.bulk_operation(new_id)
            assert operation is not None
            return operation

    def _expire(self) -> None:
        """COMPLETED → EXPIRED once ``result_url_lifetime`` has passed since it ended."""
        if self._result_url_lifetime is None:
            return
        self._run(
            "UPDATE bulk_operations SET status = ? WHERE status = ? AND ended_at < ?",
            (
                BulkOperationStatus.EXPIRED,
                BulkOperationStatus.COMPLETED,
                time.time() - self._result_url_lifetime,
            ),
        )

    def bulk_operation(self, operation_id: int) -> BulkOperation | None:
        self._expire()
        row = self._one("SELECT * FROM bulk_operations WHERE id = ?", (operation_id,))
        return _bulk_operation(row) if row else None

    def bulk_operations(self) -> list[BulkOperation]:
        """All operations, oldest first."""
        self._expire()
        rows = self._all("SELECT * FROM bulk_operations ORDER BY created_at, id")
        return [_bulk_operation(row) for row in rows]

    def update_bulk_operation(self, operation_id: int, **changes: object) -> None:
        allowed = {
            "status",
            "error_code",
            "completed_at",
            "object_count",
            "root_object_count",
            "result_lines",
            "file_size",
            "ended_at",
        }
        assert changes and set(changes) <= allowed, changes
        assignments = ", ".join(f"{name} = ?" for name in changes)
        self._run(
            f"UPDATE bulk_operations SET {assignments} WHERE id = ?",
            (*changes.values(), operation_id),
        )

    def mark_running(self, operation_id: int) -> None:
        """CREATED → RUNNING (a cancel requested meanwhile is kept)."""
        self._run(
            "UPDATE bulk_operations SET status = ? WHERE id = ? AND status = ?",
            (BulkOperationStatus.RUNNING, operation_id, BulkOperationStatus.CREATED),
        )

    def request_cancel(self, operation_id: int) -> BulkOperation | None:
        """CREATED/RUNNING → CANCELING; the operation as it is afterwards."""
        with self.transaction():
            self._run(
                "UPDATE bulk_operations SET status = ? WHERE id = ? AND status IN (?, ?)",
                (
                    BulkOperationStatus.CANCELING,
                    operation_id,
                    BulkOperationStatus.CREATED,
                    BulkOperationStatus.RUNNING,
                ),
            )
            return self.bulk_operation(operation_id)

    # --- media mutations (productUpdate media, fileUpdate, detach, reorder) ---------------

    def media_detached(self, media_id: int) -> bool:
        """The file is in the Files library only (no product's media)."""
        row = self._one("SELECT 1 FROM detached_media WHERE media_id = ?", (media_id,))
        return row is not None

    def next_media_position(self, product_id: int) -> int:
        row = self._one(
            f"SELECT MAX(position) AS p FROM media WHERE product_id = ?{_ATTACHED}", (product_id,)
        )
        return int(row["p"] or 0) + 1 if row else 1

    def filename_taken(self, filename: str, except_media: int | None = None) -> bool:
        """Another file of the shop (a product's media or a library file) has this name."""
        row = self._one(
            "SELECT 1 FROM media WHERE filename = ? AND id != ?", (filename, except_media or 0)
        )
        return row is not None

    def delete_media(self, media_id: int) -> None:
        """A file gone from the shop: its product, its variants and the Files library."""
        self._run("DELETE FROM variant_media WHERE media_id = ?", (media_id,))
        self._run("DELETE FROM detached_media WHERE media_id = ?", (media_id,))
        self._run("DELETE FROM media_sizes WHERE media_id = ?", (media_id,))
        self._run("DELETE FROM media WHERE id = ?", (media_id,))

    def detach_media(self, media_id: int, now: float) -> None:
        """The media leaves its product (and its variants) but stays in the Files library."""
        self._run("INSERT OR IGNORE INTO detached_media(media_id) VALUES (?)", (media_id,))
        self._run("DELETE FROM variant_media WHERE media_id = ?", (media_id,))
        self._run("UPDATE media SET updated_at = ? WHERE id = ?", (now, media_id))

    def attach_media(self, media_id: int, product_id: int, now: float) -> None:
        """A file becomes the last media of ``product_id``."""
        position = self.next_media_position(product_id)
        self._run("DELETE FROM detached_media WHERE media_id = ?", (media_id,))
        self._run(
            "UPDATE media SET product_id = ?, position = ?, updated_at = ? WHERE id = ?",
            (product_id, position, now, media_id),
        )

    def update_media_file(
        self, media_id: int, now: float, *, alt: str | None = None, filename: str | None = None
    ) -> None:
        """Set the alt text and/or file name given (None: unchanged)."""
        if alt is not None:
            self._run("UPDATE media SET alt = ? WHERE id = ?", (alt, media_id))
        if filename is not None:
            self._run("UPDATE media SET filename = ? WHERE id = ?", (filename, media_id))
        self._run("UPDATE media SET updated_at = ? WHERE id = ?", (now, media_id))

    def replace_media_source(self, media_id: int, source_url: str, now: float) -> None:
        """New content for a media: UPLOADED again with the source to fetch (same id, position,
        variant links); its image, size and errors are gone until processed."""
        self._run(
            "UPDATE media SET status = ?, source_url = ?, width = NULL, height = NULL,"
            " mime_type = NULL, error_code = NULL, error_details = NULL, updated_at = ?"
            " WHERE id = ?",
            (MediaStatus.UPLOADED, source_url, now, media_id),
        )
        self._run("DELETE FROM media_sizes WHERE media_id = ?", (media_id,))

    def unlink_variant_media(self, variant_id: int) -> None:
        self._run("DELETE FROM variant_media WHERE variant_id = ?", (variant_id,))

    def set_media_order(self, media_ids: Sequence[int], now: float) -> None:
        """Positions 1..n in this order."""
        for position, media_id in enumerate(media_ids, start=1):
            self._run(
                "UPDATE media SET position = ?, updated_at = ? WHERE id = ? AND position != ?",
                (position, now, media_id, position),
            )

    def set_media_file_size(self, media_id: int, size: int) -> None:
        self._run(
            "INSERT OR REPLACE INTO media_sizes(media_id, file_size) VALUES (?, ?)",
            (media_id, size),
        )

    def media_file_size(self, media_id: int) -> int | None:
        row = self._one("SELECT file_size FROM media_sizes WHERE media_id = ?", (media_id,))
        return int(row["file_size"]) if row else None

    def create_job(
        self, job_id: str, product_id: int, moves: Sequence[tuple[int, int]], due_at: float
    ) -> None:
        self._run(
            "INSERT INTO jobs(id, product_id, moves, due_at, created_at) VALUES (?, ?, ?, ?, ?)",
            (job_id, product_id, json.dumps([list(m) for m in moves]), due_at, time.time()),
        )

    def job(self, job_id: str) -> Job | None:
        row = self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(row) if row else None

    def due_jobs(self, now: float) -> list[Job]:
        rows = self._all(
            "SELECT * FROM jobs WHERE done = 0 AND due_at <= ? ORDER BY due_at, id", (now,)
        )
        return [_job(row) for row in rows]

    def finish_job(self, job_id: str) -> None:
        self._run("UPDATE jobs SET done = 1 WHERE id = ?", (job_id,))

    # --- seeding (bulkimg.sandbox.seed) and what only seeding writes ---------------------

    def next_id(self, table: str) -> int:
        """The id the next row of ``table`` (one with a large id base) would get."""
        assert table in _ID_BASES, table
        row = self._one("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,))
        return int(row["seq"]) + 1 if row else _ID_BASES[table] + 1

    def insert_seed(self, rows: SeedRows) -> None:
        """Insert every row (ids included) in one transaction, a statement per table."""
        with self.transaction(), self._lock:
            db = self._db
            db.executemany(
                "INSERT INTO products(id, handle, title, status, vendor, product_type,"
                " description_html, tags, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(p.id, *_product_values(p), p.created_at, p.updated_at) for p in rows.products],
            )
            db.executemany(
                "INSERT INTO options(id, product_id, position, name, option_values)"
                " VALUES (?, ?, ?, ?, ?)",
                [
                    (o.id, o.product_id, o.position, o.name, json.dumps(list(o.values)))
                    for o in rows.options
                ],
            )
            db.executemany(
                "INSERT INTO variants(id, product_id, position, sku, price, compare_at_price,"
                " barcode, selected, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        v.id,
                        v.product_id,
                        v.position,
                        v.sku,
                        v.price,
                        v.compare_at_price,
                        v.barcode,
                        json.dumps(v.selected),
                        v.created_at,
                        v.updated_at,
                    )
                    for v in rows.variants
                ],
            )
            db.executemany(
                "INSERT INTO media(id, product_id, position, alt, status, filename, source_url,"
                " width, height, mime_type, error_code, error_details, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        m.id,
                        m.product_id,
                        m.position,
                        m.alt,
                        m.status,
                        m.filename,
                        m.source_url,
                        m.width,
                        m.height,
                        m.mime_type,
                        m.error_code,
                        m.error_details,
                        m.created_at,
                        m.updated_at,
                    )
                    for m in rows.media
                ],
            )
            db.executemany(
                "INSERT INTO variant_media(variant_id, media_id) VALUES (?, ?)", rows.variant_media
            )
            db.executemany(
                "INSERT INTO media_sizes(media_id, file_size) VALUES (?, ?)", rows.media_sizes
            )
            db.executemany(
                "INSERT INTO variant_inventory(variant_id, quantity) VALUES (?, ?)", rows.inventory
            )
            db.executemany(
                "INSERT INTO metafields(id, product_id, namespace, key, type, value)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (f.id, f.product_id, f.namespace, f.key, f.type, f.value)
                    for f in rows.metafields
                ],
            )

    def inventory_quantity(self, variant_id: int) -> int | None:
        row = self._one(
            "SELECT quantity FROM variant_inventory WHERE variant_id = ?", (variant_id,)
        )
        return int(row["quantity"]) if row else None

    def metafields(self, product_id: int) -> list[Metafield]:
        rows = self._all("SELECT * FROM metafields WHERE product_id = ? ORDER BY id", (product_id,))
        return [
            Metafield(
                int(r["id"]), int(r["product_id"]), r["namespace"], r["key"], r["type"], r["value"]
            )
            for r in rows
        ]

    def all_rows(self) -> SeedRows:
        """Every product row of the shop (products, options, variants, media, links, inventory,
        metafields) in id order, read in one transaction: a consistent picture of the shop."""
        with self.transaction():
            return SeedRows(
                [_product(r) for r in self._all("SELECT * FROM products ORDER BY id")],
                [
                    ProductOption(
                        int(r["id"]),
                        int(r["product_id"]),
                        int(r["position"]),
                        r["name"],
                        tuple(json.loads(r["option_values"])),
                    )
                    for r in self._all("SELECT * FROM options ORDER BY id")
                ],
                [_variant(r) for r in self._all("SELECT * FROM variants ORDER BY id")],
                [_media(r) for r in self._all("SELECT * FROM media ORDER BY id")],
                [
                    (int(r["variant_id"]), int(r["media_id"]))
                    for r in self._all("SELECT * FROM variant_media ORDER BY variant_id")
                ],
                [
                    (int(r["variant_id"]), int(r["quantity"]))
                    for r in self._all("SELECT * FROM variant_inventory ORDER BY variant_id")
                ],
                [
                    Metafield(
                        int(r["id"]),
                        int(r["product_id"]),
                        r["namespace"],
                        r["key"],
                        r["type"],
                        r["value"],
                    )
                    for r in self._all("SELECT * FROM metafields ORDER BY id")
                ],
            )


def _product_values(p: Product) -> tuple[object, ...]:
    return (
        p.handle,
        p.title,
        p.status,
        p.vendor,
        p.product_type,
        p.description_html,
        json.dumps(list(p.tags)),
    )


def _product(row: sqlite3.Row) -> Product:
    return Product(
        int(row["id"]),
        row["handle"],
        row["title"],
        row["status"],
        row["vendor"],
        row["product_type"],
        row["description_html"],
        tuple(json.loads(row["tags"])),
        float(row["created_at"]),
        float(row["updated_at"]),
    )


def _variant(row: sqlite3.Row) -> VariantRow:
    return VariantRow(
        int(row["id"]),
        int(row["product_id"]),
        int(row["position"]),
        row["sku"],
        row["price"],
        row["compare_at_price"],
        row["barcode"],
        tuple((name, value) for name, value in json.loads(row["selected"])),
        float(row["created_at"]),
        float(row["updated_at"]),
    )


def _media(row: sqlite3.Row) -> Media:
    return Media(
        int(row["id"]),
        int(row["product_id"]),
        int(row["position"]),
        row["alt"],
        MediaStatus(row["status"]),
        row["filename"],
        row["source_url"],
        row["width"],
        row["height"],
        row["mime_type"],
        row["error_code"],
        row["error_details"],
        float(row["created_at"]),
        float(row["updated_at"]),
    )


def _bulk_operation(row: sqlite3.Row) -> BulkOperation:
    return BulkOperation(
        int(row["id"]),
        BulkOperationType(row["type"]),
        BulkOperationStatus(row["status"]),
        row["error_code"],
        row["query"],
        row["staged_key"],
        row["client_identifier"],
        bool(row["group_objects"]),
        int(row["seed"]),
        float(row["created_at"]),
        row["completed_at"],
        int(row["object_count"]),
        int(row["root_object_count"]),
        int(row["result_lines"]),
        row["file_size"],
        row["ended_at"],
    )


def _job(row: sqlite3.Row) -> Job:
    return Job(
        row["id"],
        int(row["product_id"]),
        tuple((int(m), int(p)) for m, p in json.loads(row["moves"])),
        float(row["due_at"]),
        bool(row["done"]),
    )
