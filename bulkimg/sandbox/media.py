"""Media processing: each new media's ``originalSource`` is really downloaded over HTTP and checked,
UPLOADED → PROCESSING → READY (with width and height) or FAILED with Shopify's MediaErrorCode.

Shopify processes media asynchronously after the mutation returns; so does the sandbox, in worker
threads, taking ``media_processing_delay`` seconds per media. Unfinished media are picked up again
after a restart. The source URL is kept only until the media is processed and never logged
unredacted (it is usually a presigned URL).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import httpx

from bulkimg.images.header import (
    InvalidImage,
    NeedBytes,
    read_image_header_from_bytes,
    sniff_format,
)
from bulkimg.redact import redact_url
from bulkimg.sandbox.config import SandboxConfig
from bulkimg.sandbox.faults import FaultInjector
from bulkimg.sandbox.store import Store

log = logging.getLogger(__name__)

_MIME_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp"}


@dataclass(frozen=True, slots=True)
class Checked:
    """The verdict on downloaded bytes: ``size`` (width, height, MIME type) or ``failure``."""

    size: tuple[int, int, str] | None = None
    failure: tuple[str, str] | None = None
    file_size: int | None = None
    """Bytes downloaded (MediaImage.originalSource.fileSize)."""


def _failed(code: str, details: str) -> Checked:
    return Checked(failure=(code, details))


def _query(url: str) -> dict[str, str]:
    """The URL's query parameters, names in lower case."""
    return {k.lower(): v for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)}


def presigned_expiry(url: str) -> float | None:
    """When a presigned URL expires (epoch seconds): SigV4 ``X-Amz-Date`` + ``X-Amz-Expires``,
    SigV2 ``Expires``; None when the URL is not presigned."""
    query = _query(url)
    date, lifetime = query.get("x-amz-date"), query.get("x-amz-expires")
    if date is not None and lifetime is not None:
        try:
            signed_at = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            return signed_at.timestamp() + int(lifetime)
        except ValueError:
            return 0.0  # unreadable: treat as expired (stricter)
    if "signature" in query and query.get("expires", "").isdigit():
        return float(query["expires"])
    return None


def _is_presigned(url: str) -> bool:
    query = _query(url)
    return "x-amz-signature" in query or "signature" in query


class MediaWorker:
    """Threads that process media one at a time each."""

    def __init__(self, store: Store, config: SandboxConfig, faults: FaultInjector) -> None:
        self._store = store
        self._config = config
        self._faults = faults
        self._queue: queue.Queue[int | None] = queue.Queue()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._client = httpx.Client(
            timeout=config.media_fetch_timeout, trust_env=False, follow_redirects=True
        )

    def start(self) -> None:
        for n in range(self._config.media_workers):
            thread = threading.Thread(target=self._work, name=f"sandbox-media-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self.enqueue(self._store.media_to_process())

    def enqueue(self, media_ids: tuple[int, ...] | list[int]) -> None:
        for media_id in media_ids:
            self._queue.put(media_id)

    def close(self) -> None:
        self._stop.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        self._client.close()

    def _work(self) -> None:
        while not self._stop.is_set():
            media_id = self._queue.get()
            if media_id is None:
                return
            try:
                self._process(media_id)
            except Exception:  # a worker must survive one bad media
                log.exception("sandbox: processing media %s failed", media_id)

    def _process(self, media_id: int) -> None:
        half = self._config.media_processing_delay / 2
        if self._stop.wait(half):
            return
        media = self._store.start_processing(media_id)
        if media is None or media.source_url is None:
            return
        checked = self.check(media.source_url)
        if self._stop.wait(half):
            return  # stays PROCESSING; processed again after a restart
        with self._store.transaction():
            self._store.finish_media(media_id, size=checked.size, failure=checked.failure)
            if checked.size is not None and checked.file_size is not None:
                self._store.set_media_file_size(media_id, checked.file_size)

    def check(self, url: str) -> Checked:
        """Download ``url`` and judge the bytes as Shopify would."""
        fault = self._faults.match("media_fetch", url=url)
        if fault is not None:
            self._stop.wait(fault.delay)
            if fault.status is not None:
                return _failed("IMAGE_DOWNLOAD_FAILURE", f"HTTP {fault.status} (injected fault)")
        expired = self._expired(url, time.time())
        if expired is not None:
            log.info("sandbox: %s: %s", redact_url(url), expired)
            return _failed("IMAGE_DOWNLOAD_FAILURE", expired)
        downloaded = self._download(url)
        if isinstance(downloaded, Checked):
            return downloaded
        return self._judge(downloaded)

    def _expired(self, url: str, now: float) -> str | None:
        """Why a presigned ``url`` no longer works at ``now`` (None: it may): its own expiry
        or the expiry of the session credentials that signed it."""
        expiry = presigned_expiry(url)
        if expiry is not None and now >= expiry:
            return "the presigned URL had expired when the image was fetched"
        credentials = self._config.credentials_expire_at
        if credentials is not None and now >= credentials and _is_presigned(url):
            return "the credentials that signed the URL had expired when the image was fetched"
        return None

    def _download(self, url: str) -> bytes | Checked:
        limit = self._config.media_max_bytes
        too_big = _failed("INVALID_IMAGE_FILE_SIZE", f"the image is larger than {limit} bytes")
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    log.info("sandbox: %s answered %s", redact_url(url), response.status_code)
                    return _failed("IMAGE_DOWNLOAD_FAILURE", f"HTTP {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    return too_big
                data = bytearray()
                for chunk in response.iter_bytes():
                    data.extend(chunk)
                    if len(data) > limit:
                        return too_big
                return bytes(data)
        except httpx.HTTPError as exc:
            log.info("sandbox: downloading %s failed: %s", redact_url(url), type(exc).__name__)
            return _failed("IMAGE_DOWNLOAD_FAILURE", type(exc).__name__)

    def _judge(self, data: bytes) -> Checked:
        if sniff_format(data[:12]) is None:
            return _failed("UNSUPPORTED_IMAGE_FILE_TYPE", "not a JPEG, PNG, GIF or WebP image")
        try:
            header = read_image_header_from_bytes(data)
        except (InvalidImage, NeedBytes) as exc:
            return _failed("IMAGE_PROCESSING_FAILURE", str(exc))
        max_pixels = self._config.media_max_megapixels * 1_000_000
        if header.pixels > max_pixels:
            return _failed(
                "INVALID_IMAGE_RESOLUTION",
                f"{header.width}x{header.height} exceeds {self._config.media_max_megapixels:g}"
                " megapixels",
            )
        return Checked(
            size=(header.width, header.height, _MIME_TYPES[header.format.value]),
            file_size=len(data),
        )
