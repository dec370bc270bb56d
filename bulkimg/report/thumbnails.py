"""Small JPEG thumbnails for the run preview: one GET per new (bucket, key, ETag), cached in SQLite.

Only `--thumbnails` uses this module; without it the preview makes no S3 request at all.
"""

from __future__ import annotations

import base64
import io
import sqlite3
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from PIL import Image

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CACHE_FILE = "thumbnails.sqlite"
THUMBNAIL_PX = 160
JPEG_QUALITY = 70
DATA_URI_PREFIX = "data:image/jpeg;base64,"

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS thumbnails (
    bucket TEXT NOT NULL, key TEXT NOT NULL, etag TEXT NOT NULL,
    jpeg BLOB NOT NULL, made_at REAL NOT NULL,
    PRIMARY KEY (bucket, key, etag)
);
CREATE INDEX IF NOT EXISTS thumbnails_by_key ON thumbnails (key, etag);
"""


class ThumbnailCache:
    """Thumbnails already made, keyed by (bucket, key, ETag); one SQLite file, one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        """Opened on first use: a preview that needs no thumbnail never creates the file."""
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path)
            db.execute("PRAGMA journal_mode=WAL")
            if db.execute("PRAGMA user_version").fetchone()[0] not in (0, SCHEMA_VERSION):
                db.execute("DROP TABLE IF EXISTS thumbnails")  # a cache, not data
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            db.commit()
            self._connection = db
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def get(self, bucket: str | None, key: str, etag: str) -> bytes | None:
        """The cached JPEG; with no bucket (no S3 settings), any bucket's copy of key and ETag."""
        if bucket is None:
            row = self._db.execute(
                "SELECT jpeg FROM thumbnails WHERE key=? AND etag=? LIMIT 1", (key, etag)
            ).fetchone()
        else:
            row = self._db.execute(
                "SELECT jpeg FROM thumbnails WHERE bucket=? AND key=? AND etag=?",
                (bucket, key, etag),
            ).fetchone()
        return bytes(row[0]) if row else None

    def put(self, bucket: str, key: str, etag: str, jpeg: bytes) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO thumbnails VALUES (?,?,?,?,?)",
            (bucket, key, etag, jpeg, time.time()),
        )

    def commit(self) -> None:
        self._db.commit()


def make_thumbnail(body: bytes, max_px: int = THUMBNAIL_PX) -> bytes | None:
    """A JPEG at most `max_px` on its longer side, or None when Pillow cannot read `body`."""
    try:
        with Image.open(io.BytesIO(body)) as image:
            image.draft("RGB", (max_px, max_px))  # JPEG: decode at a reduced scale, much faster
            image.thumbnail((max_px, max_px))
            rgb = _on_white(image)
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def _on_white(image: Image.Image) -> Image.Image:
    """RGB, with transparent areas white (product shots on transparent PNG/WebP)."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def data_uri(jpeg: bytes) -> str:
    return DATA_URI_PREFIX + base64.b64encode(jpeg).decode("ascii")


class Thumbnailer:
    """Thumbnails from the cache; with an S3 client, the missing ones are made from one GET each."""

    def __init__(
        self,
        cache: ThumbnailCache,
        bucket: str | None,
        client: S3Client | None = None,
        workers: int = 4,
        max_bytes: int = 20 * 1024 * 1024,
    ) -> None:
        self.cache = cache
        self.bucket = bucket
        self.client = client
        self.workers = workers
        self.max_bytes = max_bytes
        self.gets = 0  # full GETs sent, for the build report
        self.failed = 0  # images S3 or Pillow could not turn into a thumbnail
        self._lock = threading.Lock()

    def prepare(self, images: Iterable[tuple[str, str]]) -> None:
        """Make and cache the thumbnails of (key, ETag) pairs not cached yet."""
        if self.client is None or self.bucket is None:
            return
        bucket = self.bucket
        missing = [i for i in dict.fromkeys(images) if self.cache.get(bucket, *i) is None]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for (key, etag), jpeg in zip(missing, pool.map(self._fetch, missing), strict=True):
                if jpeg is None:
                    self.failed += 1
                else:
                    self.cache.put(bucket, key, etag, jpeg)
        self.cache.commit()

    def data_uri(self, key: str, etag: str) -> str | None:
        jpeg = self.cache.get(self.bucket, key, etag)
        return data_uri(jpeg) if jpeg is not None else None

    def _fetch(self, image: tuple[str, str]) -> bytes | None:
        key, etag = image
        assert self.client is not None and self.bucket is not None
        with self._lock:
            self.gets += 1
        try:
            # If-Match: a file replaced since the build is not cached under the old ETag.
            response = self.client.get_object(Bucket=self.bucket, Key=key, IfMatch=f'"{etag}"')
            body = response["Body"].read(self.max_bytes + 1)
        except (BotoCoreError, ClientError):
            return None
        return make_thumbnail(body) if len(body) <= self.max_bytes else None
