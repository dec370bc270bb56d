"""Index S3 for a set of Image_SKUs: list each needed folder once, filter names, read headers.

Listing: s3/listing.py (a skip-scan by default; `folders` and `sweep` can be forced). When a
page comes out of S3's byte order, the skip-scan stops and the run lists folder by folder
instead, saying so (`IndexStats.warnings`); nothing listed before is kept.

Names: each listed file is classified into an Image_SKU's candidates (the newest of each
variation) or rejections.

Headers: a well-named candidate is read with ranged GETs of its head, extended only to where
the parser says the size marker lies; verdicts are cached by (bucket, key, ETag).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from bulkimg.images.cache import ProbeCache
from bulkimg.images.header import (
    ByteWindows,
    InvalidImage,
    NeedBytes,
    read_image_header,
)
from bulkimg.images.rules import ImageRules
from bulkimg.models import (
    AcceptedImage,
    ImageProbe,
    RejectedFile,
    Rejection,
    S3Object,
    SkuImages,
)
from bulkimg.parallel import as_done
from bulkimg.progress import NullReporter, Reporter
from bulkimg.s3.get import PresignedGetter, S3GetError
from bulkimg.s3.http1 import BodyCutShortError
from bulkimg.s3.keys import ParsedName, folder_for, parse_image_name
from bulkimg.s3.listing import BucketLister, Listing, OutOfOrderError
from bulkimg.s3.options import S3Options
from bulkimg.s3.stats import IndexStats

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# When the size marker lies past what was read, fetch this much from where the parser points:
# enough for the next few segment headers, without reading the skipped segments' bodies.
PROBE_EXTENSION_BYTES = 16 * 1024
# Candidates looked up in the header cache per query.
CACHE_BATCH = 500
# botocore retries a request, not the reading of its streamed body: a body cut short (the
# connection dropped mid-answer) is fetched again a few times before the object is unreadable.
BODY_READ_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class _Candidate:
    image_sku: str
    variation: int
    obj: S3Object
    extension: str


class S3ImageIndex:
    """Finds the valid images of Image_SKUs in one bucket."""

    def __init__(
        self,
        client: S3Client,
        options: S3Options,
        rules: ImageRules,
        cache: ProbeCache,
        reporter: Reporter | None = None,
    ) -> None:
        self.client = client
        self.bucket: str = options.bucket
        self.options = options
        self.rules = rules
        # One Retrying for every header read (tenacity keeps each call's state per thread).
        self._read_again = Retrying(
            retry=retry_if_exception_type(BodyCutShortError),
            stop=stop_after_attempt(BODY_READ_ATTEMPTS),
            wait=wait_exponential(multiplier=0.1, max=1.0),
            sleep=lambda seconds: time.sleep(seconds),
            reraise=True,
        )
        self.cache = cache
        self.reporter: Reporter = reporter or NullReporter()
        self.stats = IndexStats()
        self._getter: PresignedGetter | None = None  # while reading headers by presigned URL
        self.lister = BucketLister(client, options, self.stats)

    def index(self, image_skus: Collection[str]) -> dict[str, SkuImages]:
        """SkuImages for every (valid) Image_SKU given."""
        prefix = self.options.prefix
        result = {sku: SkuImages(sku, folder_for(sku, prefix)) for sku in image_skus}
        skus_by_folder: dict[str, list[str]] = defaultdict(list)
        for sku, images in result.items():
            skus_by_folder[images.folder].append(sku)
        for skus in skus_by_folder.values():
            skus.sort(key=len, reverse=True)  # see _owner
        self.stats.folders_needed = len(skus_by_folder)

        if self.options.get_client != "boto3":
            self._getter = PresignedGetter(self.client, self.options)
        self.lister.getter = self._getter
        try:
            candidates = self._list_and_classify(skus_by_folder, result)
            self._probe_all(candidates, result)
        finally:
            if self._getter is not None:
                self._getter.close()
                self._getter = None
                self.lister.getter = None
        for images in result.values():
            images.accepted.sort(key=lambda a: a.variation)
            self.stats.accepted += len(images.accepted)
        return result

    # -- listing -----------------------------------------------------------------------------

    def _list_and_classify(
        self, skus_by_folder: dict[str, list[str]], result: dict[str, SkuImages]
    ) -> list[_Candidate]:
        folders = sorted(skus_by_folder)
        try:
            return self._list_with(self.lister.jobs(folders), skus_by_folder, result)
        except OutOfOrderError as broken:
            # Nothing listed so far is kept: the names' verdicts are made again from scratch.
            for images in result.values():
                images.rejected.clear()
            self.stats.rejected.clear()
            self.stats.other_files = 0
            where = self.lister.endpoint_name()
            self.stats.strategy = "folders"
            self.stats.strategy_reason = (
                f"switched from skip-scan: {where} listed out of S3's byte order ({broken})"
            )
            warning = (
                f"listing: {where} does not list keys in S3's byte order ({broken}); the"
                " skip-scan could miss folders, so this run listed each folder on its own"
                " (set BULKIMG_S3_LIST_STRATEGY=folders to go there directly)"
            )
            self.stats.warnings.append(warning)
            self.reporter.info(f"warning: {warning}")
            jobs = self.lister.folder_jobs(folders)
            return self._list_with(jobs, skus_by_folder, result)

    def _list_with(
        self,
        jobs: list[Callable[[], Listing]],
        skus_by_folder: dict[str, list[str]],
        result: dict[str, SkuImages],
    ) -> list[_Candidate]:
        stage = "Listing S3 folders"
        self.reporter.start(stage, len(skus_by_folder))
        candidates: list[_Candidate] = []
        self.stats.list_chains += len(jobs)
        # as_done keeps no finished listing: each is classified, then dropped
        for _, listing in as_done(_call, jobs, self.options.workers, "s3-list"):
            self.stats.list_pages += listing.pages
            self.stats.objects_listed += listing.seen
            for folder, objects in listing.folders.items():
                candidates.extend(self._classify(objects, skus_by_folder[folder], result))
                self.reporter.advance(stage)
            del listing
        self.reporter.finish(stage)
        return candidates

    # -- names -------------------------------------------------------------------------------

    def _classify(
        self, objects: list[S3Object], skus: list[str], result: dict[str, SkuImages]
    ) -> list[_Candidate]:
        """Sort a folder's files into each SKU's candidates and rejections."""
        by_variation: dict[tuple[str, int], list[_Candidate]] = defaultdict(list)
        for obj in objects:
            owner = _owner(obj.filename, skus)
            if owner is None:
                self.stats.other_files += 1
                continue
            sku, parsed = owner
            if isinstance(parsed, ParsedName):
                cand = _Candidate(sku, parsed.variation, obj, parsed.extension)
                by_variation[(sku, parsed.variation)].append(cand)
            else:
                self._reject(result[sku], obj.key, parsed)
        winners: list[_Candidate] = []
        for (sku, _), group in by_variation.items():
            group.sort(key=lambda c: (c.obj.last_modified, c.obj.key), reverse=True)
            winners.append(group[0])
            for older in group[1:]:
                self._reject(result[sku], older.obj.key, Rejection.SUPERSEDED, group[0].obj.key)
        return winners

    def _reject(self, images: SkuImages, key: str, reason: Rejection, detail: str = "") -> None:
        images.rejected.append(RejectedFile(key, reason, detail))
        self.stats.rejected[reason.value] += 1

    # -- headers -----------------------------------------------------------------------------

    def _probe_all(self, candidates: list[_Candidate], result: dict[str, SkuImages]) -> None:
        self.stats.candidates = len(candidates)
        to_read: list[_Candidate] = []
        # The cache is asked CACHE_BATCH candidates at a time: its answers for every image of a
        # catalog at once would hold ~250 bytes per image for nothing (90 MB at 200,000 images).
        for start in range(0, len(candidates), CACHE_BATCH):
            batch = candidates[start : start + CACHE_BATCH]
            asked = [(c.obj.key, c.obj.etag) for c in batch if self._readable(c)]
            cached = self.cache.get_many(self.bucket, asked)
            for cand in batch:
                verdict = self._verdict_without_reading(cand, cached)
                if verdict is None:
                    to_read.append(cand)
                else:
                    self._record(cand, verdict, result)
        stage = "Reading image headers"
        self.reporter.start(stage, len(to_read))
        fresh: list[tuple[str, str, ImageProbe]] = []
        workers = self.options.workers
        for cand, header in as_done(self._probe, to_read, workers, "s3-header"):
            self.stats.probed += 1
            self.stats.bytes_read.append(header.bytes_read)
            fresh.append((cand.obj.key, cand.obj.etag, header))
            self._record(cand, self._judge(cand, header), result)
            self.reporter.advance(stage)
            if len(fresh) >= 500:
                self.cache.put_many(self.bucket, fresh)
                fresh.clear()
        self.cache.put_many(self.bucket, fresh)
        self.reporter.finish(stage)

    def _readable(self, cand: _Candidate) -> bool:
        """Worth a look in the cache (or a read): neither empty nor too large."""
        return self.rules.worth_reading(cand.obj.size)

    def _verdict_without_reading(
        self, cand: _Candidate, cached: dict[tuple[str, str], ImageProbe]
    ) -> ImageProbe | None:
        obj = cand.obj
        verdict = self.rules.by_size(obj.size)
        if verdict is not None:
            return verdict
        header = cached.get((obj.key, obj.etag))
        if header is not None:
            self.stats.cache_hits += 1
            return self._judge(cand, header)
        return None

    def _record(self, cand: _Candidate, probe: ImageProbe, result: dict[str, SkuImages]) -> None:
        images = result[cand.image_sku]
        if probe.rejection is not None:
            self._reject(images, cand.obj.key, probe.rejection, probe.detail)
            return
        obj = cand.obj
        images.accepted.append(
            AcceptedImage(
                cand.image_sku,
                cand.variation,
                obj.key,
                obj.etag,
                obj.size,
                probe.width,
                probe.height,
                probe.format or "",
            )
        )

    def _probe(self, cand: _Candidate) -> ImageProbe:
        """Read just enough of the object's head to know its format and pixel size.

        The result is the raw header (cached as such); the image rules are applied by _judge.
        """
        obj = cand.obj
        windows = ByteWindows(total_size=obj.size)
        budget = self.options.probe_max_bytes  # bytes this probe may still read
        offset, length = 0, min(self.options.probe_initial_bytes, obj.size, budget)
        while True:
            data = self._get_range(obj, offset, length)
            if isinstance(data, ImageProbe):
                return data
            windows.add(offset, data)
            budget -= length
            try:
                header = read_image_header(windows)
            except NeedBytes as need:
                if need.length > budget:
                    return _rejected(
                        Rejection.MARKER_TOO_FAR, windows, f"read {windows.bytes_held}"
                    )
                # A walk that ran on past the range just read (a GIF's XMP packet, block after
                # block) gets ranges that double what is held: a few GETs for a MB, not one per
                # 16 KiB; a jump past a segment body gets the usual extension.
                ran_on = need.offset == offset + length
                more = max(PROBE_EXTENSION_BYTES, windows.bytes_held if ran_on else 0)
                offset = need.offset
                length = min(max(need.length, more), obj.size - need.offset, budget)
                continue
            except InvalidImage as bad:
                return _rejected(Rejection.CORRUPT, windows, bad.reason)
            return ImageProbe(
                header.format.value, header.width, header.height, None, "", windows.bytes_held
            )

    def _get_range(self, obj: S3Object, offset: int, length: int) -> bytes | ImageProbe:
        try:
            data = self._read_range_again_if_cut(obj, offset, length)
        except BodyCutShortError as exc:
            return ImageProbe(None, 0, 0, Rejection.UNREADABLE, str(exc))
        except S3GetError as exc:
            return _failed_get(exc.code)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            return _failed_get(code) if code else _failed_get(str(exc))
        except BotoCoreError as exc:
            return ImageProbe(None, 0, 0, Rejection.UNREADABLE, type(exc).__name__)
        if len(data) != length:
            return ImageProbe(None, 0, 0, Rejection.UNREADABLE, "short read")
        return data

    def _read_range_again_if_cut(self, obj: S3Object, offset: int, length: int) -> bytes:
        """`_read_range`, again (0.1 s, 0.2 s, ... later) while the body comes cut short."""
        data: bytes = self._read_again(self._read_range, obj, offset, length)
        return data

    def _read_range(self, obj: S3Object, offset: int, length: int) -> bytes:
        """The bytes of one ranged GET (If-Match: the listed ETag)."""
        if self._getter is not None:
            try:
                return self._getter.get_range(obj.key, obj.etag, offset, length)
            except S3GetError as exc:
                if not exc.boto3_would_pass:
                    raise
                # A region redirect, expired credentials, a skewed clock: boto3 handles these.
        response = self.client.get_object(
            Bucket=self.bucket,
            Key=obj.key,
            Range=f"bytes={offset}-{offset + length - 1}",
            IfMatch=f'"{obj.etag}"',
        )
        try:
            data: bytes = response["Body"].read()
        except (IncompleteReadError, ResponseStreamingError, ReadTimeoutError) as exc:
            raise BodyCutShortError(type(exc).__name__) from None
        return data

    def _judge(self, cand: _Candidate, probe: ImageProbe) -> ImageProbe:
        """The image rules (images/rules.py) applied to a header (fresh or cached)."""
        return self.rules.judge(probe, cand.extension)


def _call(job: Callable[[], Listing]) -> Listing:
    return job()


def _owner(filename: str, skus: list[str]) -> tuple[str, ParsedName | Rejection] | None:
    """The SKU a file belongs to: the one it validly names, else the longest it starts with.

    Image_SKUs may hold '-': "1102192-1a-1.jpg" starts with SKU "1102192-1a" too, and must stay
    an image of 1102192 rather than a rejected name of the longer SKU.
    """
    fallback: tuple[str, Rejection] | None = None
    for sku in skus:  # longest first
        parsed = parse_image_name(filename, sku)
        if isinstance(parsed, ParsedName):
            return sku, parsed
        if parsed is not None and fallback is None:
            fallback = sku, parsed
    return fallback


def _failed_get(code: str) -> ImageProbe:
    """The verdict on an object S3 would not return: S3's error code (or the error) says why."""
    if code in ("NoSuchKey", "404"):
        return ImageProbe(None, 0, 0, Rejection.CHANGED, code)
    if code in ("PreconditionFailed", "412"):
        # Still there, with new bytes: a line without it would delete the product's
        # image, so like any object not read it defers its group to the next run.
        return ImageProbe(None, 0, 0, Rejection.UNREADABLE, f"replaced since listed ({code})")
    return ImageProbe(None, 0, 0, Rejection.UNREADABLE, code)


def _rejected(rejection: Rejection, windows: ByteWindows, detail: str) -> ImageProbe:
    return ImageProbe(None, 0, 0, rejection, detail, windows.bytes_held)
