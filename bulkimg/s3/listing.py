"""List the needed folders of one bucket: a skip-scan, folder by folder, or a sweep.

`auto` makes a skip-scan. S3 returns keys in order and ListObjectsV2 starts after any key
(`StartAfter`), so the sorted needed folders are listed in chains of requests without a
delimiter: each page of up to 1,000 keys covers every needed folder it reaches, and the next
request jumps to the first needed folder the page did not cover. That takes no more requests
than listing each folder once, nor than sweeping the prefixes, and needs no history. `folders`
(one listing per folder) and `sweep` (one listing per first-level prefix) can be forced.

The skip-scan needs S3's order: keys ascending by their UTF-8 bytes, a page starting after its
`StartAfter`. Other S3 implementations differ (SeaweedFS lists a filer's directories in turn:
`a/19/x` comes before `a/19-old/y`), so every page is checked as it comes: a key at or before
the one before it (or the `StartAfter`) raises OutOfOrderError, and the index lists folder by
folder instead, saying so (`IndexStats.warnings`). A folder's chain starts after the folder's
own name with its `/`, which a filer and S3 read alike (SeaweedFS reads `StartAfter=a/19` as
"after the directory 19" and skips all of it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from bulkimg.errors import ConfigError, S3Error
from bulkimg.models import S3Object
from bulkimg.s3.get import PresignedGetter, S3GetError
from bulkimg.s3.options import S3Options
from bulkimg.s3.stats import IndexStats

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


LIST_PAGE_SIZE = 1000
# Parallel skip-scan chains: a chain may cost one request more than if its folders were part
# of a longer chain; below this many folders per chain, the parallelism is not worth it.
MIN_FOLDERS_PER_CHAIN = 32
# ...and at most this many chains: each one more may cost a page more, and a few chains in
# parallel already hide the round trips of a listing (one page per 1,000 keys).
MAX_LIST_CHAINS = 16
_CONFIG_ERROR_CODES = frozenset(
    {"NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}
)


@dataclass(frozen=True, slots=True)
class Listing:
    """One listing job's result: the needed folders it saw, and what it cost."""

    folders: dict[str, list[S3Object]]
    pages: int
    seen: int


class OutOfOrderError(Exception):
    """A listing page contradicts S3's byte order: the skip-scan could miss folders."""

    def __init__(self, before: str, key: str) -> None:
        super().__init__(before, key)
        self.before = before
        self.key = key

    def __str__(self) -> str:
        return f"key {self.key[:200]!r} came after {self.before[:200]!r}"


class BucketLister:
    """Listing jobs over one bucket's needed folders; the strategy made goes into `stats`."""

    def __init__(self, client: S3Client, options: S3Options, stats: IndexStats) -> None:
        self.client = client
        self.bucket = options.bucket
        self.options = options
        self.stats = stats
        self.getter: PresignedGetter | None = None  # while listing by presigned URL

    def endpoint_name(self) -> str:
        """Who answers the listings: AWS S3, or the custom endpoint's host."""
        endpoint = self.options.endpoint
        if not endpoint or _is_aws(endpoint):
            return "S3"
        return f"the S3 endpoint {urlsplit(endpoint).netloc or endpoint}"

    def folder_jobs(self, folders: list[str]) -> list[Callable[[], Listing]]:
        """One listing per folder."""
        return [partial(self._list_folder, folder) for folder in folders]

    def jobs(self, folders: list[str]) -> list[Callable[[], Listing]]:
        """Independent listings (run in parallel) that together see every needed folder."""
        strategy = self.options.list_strategy
        if strategy in ("folders", "sweep"):
            self.stats.strategy_reason = "set by BULKIMG_S3_LIST_STRATEGY (or --list-strategy)"
        if strategy == "folders":
            self.stats.strategy = "folders"
            return self.folder_jobs(folders)
        if strategy == "sweep":
            by_top: dict[str, set[str]] = defaultdict(set)
            for folder in folders:
                by_top[_top_prefix(folder, self.options.prefix)].add(folder)
            self.stats.strategy = "sweep"
            self.stats.prefixes_swept = len(by_top)
            return [partial(self._sweep, top, needed) for top, needed in sorted(by_top.items())]
        self.stats.strategy = "skip-scan"
        where = self.endpoint_name()
        if where == "S3":
            self.stats.strategy_reason = "auto: S3 lists keys in byte order after StartAfter"
        else:
            self.stats.strategy_reason = (
                f"auto on {where} (not AWS): every page is checked against S3's byte order;"
                " a page out of order switches the run to folders"
            )
        workers = min(self.options.workers, MAX_LIST_CHAINS)
        chains = _chains(folders, self.options.prefix, workers)
        return [partial(self._skip_scan, chain) for chain in chains if chain]

    @contextmanager
    def _listing_errors(self, prefix: str) -> Iterator[None]:
        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            raise _list_error(self.bucket, prefix, code or str(exc)) from None
        except BotoCoreError as exc:
            raise S3Error(f"S3 listing of s3://{self.bucket}/{prefix} failed: {exc}") from None

    def _pages(self, prefix: str, delimiter: str | None) -> Iterator[list[S3Object]]:
        paginator = self.client.get_paginator("list_objects_v2")
        kwargs = {
            "Bucket": self.bucket,
            "Prefix": prefix,
            "PaginationConfig": {"PageSize": LIST_PAGE_SIZE},
        }
        if delimiter:
            kwargs["Delimiter"] = delimiter
        with self._listing_errors(prefix):
            for page in paginator.paginate(**kwargs):  # type: ignore[arg-type]
                yield [_s3_object(o) for o in page.get("Contents", [])]

    def _page_after(self, prefix: str, start_after: str) -> tuple[list[S3Object], bool]:
        """One page of the keys under `prefix` that sort after `start_after`; truncated?"""
        objects, truncated = self._list_page(prefix, start_after)
        if truncated and not objects:  # S3 never does this; going on would skip folders
            raise S3Error(f"S3 listing of s3://{self.bucket}/{prefix} returned an empty page")
        return objects, truncated

    def _list_page(self, prefix: str, start_after: str) -> tuple[list[S3Object], bool]:
        if self.getter is not None:
            try:
                page = self.getter.list_page(prefix, start_after, LIST_PAGE_SIZE)
            except S3GetError as exc:
                if not exc.boto3_would_pass:
                    raise _list_error(self.bucket, prefix, exc.code or str(exc)) from None
                # A region redirect, expired credentials, a skewed clock: boto3 handles these.
            else:
                return page.objects, page.truncated
        with self._listing_errors(prefix):
            answer = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=prefix, StartAfter=start_after, MaxKeys=LIST_PAGE_SIZE
            )
        return [_s3_object(o) for o in answer.get("Contents", [])], bool(answer.get("IsTruncated"))

    def _list_folder(self, folder: str) -> Listing:
        objects: list[S3Object] = []
        pages = 0
        for page in self._pages(folder, "/"):
            pages += 1
            objects.extend(page)
        return Listing({folder: objects}, pages, len(objects))

    def _sweep(self, top: str, needed: set[str]) -> Listing:
        found: dict[str, list[S3Object]] = {folder: [] for folder in needed}
        pages = seen = 0
        for page in self._pages(top, None):
            pages += 1
            seen += len(page)
            _collect(found, page)
        return Listing(found, pages, seen)

    def _skip_scan(self, folders: list[str]) -> Listing:
        """List the sorted `folders` in one chain of pages, jumping over the keys between them.

        Each page covers the needed folders it reaches; a folder is done once a page ends past
        it (or the listing ends). The next page starts after the last key seen when that key
        lies inside the next needed folder (a folder of more than a page), else just before
        that folder. Keys outside the needed folders (other folders, subfolders) are dropped.
        """
        found: dict[str, list[S3Object]] = {folder: [] for folder in folders}
        # The folders' common prefix bounds the listing: its end is the end of the chain.
        prefix = _common_prefix(folders[0], folders[-1])
        pages = seen = 0
        start_after = _before(folders[0])
        pending = 0  # index of the first folder not yet seen whole
        while True:
            page, truncated = self._page_after(prefix, start_after)
            _check_order(start_after, page)
            pages += 1
            seen += len(page)
            _collect(found, page)
            if not truncated:
                break
            last = page[-1].key
            while pending < len(folders) and _passed(last, folders[pending]):
                pending += 1
            if pending == len(folders):
                break
            start_after = max(last, _before(folders[pending]))
        return Listing(found, pages, seen)


def _top_prefix(folder: str, base: str) -> str:
    """`sorted-media/11/02/19/` -> `sorted-media/11/`."""
    return base + folder[len(base) :].split("/", 1)[0] + "/"


def _chains(folders: list[str], base: str, workers: int) -> list[list[str]]:
    """Sorted `folders` cut into up to `workers` contiguous runs of whole first-level prefixes.

    A chain makes no more requests than sweeping its prefixes or listing its folders one by
    one (but for a folder or prefix of an exact multiple of 1,000 keys: one more); cutting only
    between prefixes keeps that true of the chains together. Fewer chains
    make fewer requests (a page may cover the end of one prefix and the start of the next).
    """
    count = max(1, min(workers, len(folders) // MIN_FOLDERS_PER_CHAIN))
    runs: list[list[str]] = [[]]
    top = None
    for folder in folders:
        folder_top = _top_prefix(folder, base)
        full = len(runs[-1]) * count >= len(folders)
        if folder_top != top and full and len(runs) < count:
            runs.append([])
        top = folder_top
        runs[-1].append(folder)
    return runs


def _common_prefix(first: str, last: str) -> str:
    """The longest string both start with (a key prefix, not a path: `a/1` and `a/2` give `a/`)."""
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def _collect(found: dict[str, list[S3Object]], page: list[S3Object]) -> None:
    """Add each object of `page` to its folder's list, when its folder is one of `found`."""
    for obj in page:
        objects = found.get(_folder_of(obj.key))
        if objects is not None:
            objects.append(obj)


def _folder_of(key: str) -> str:
    """`sorted-media/11/02/19/x.jpg` -> `sorted-media/11/02/19/` (what a `/` listing groups)."""
    return key[: key.rfind("/") + 1]


def _before(folder: str) -> str:
    """A StartAfter that every key of `folder` sorts after (but the folder's own marker, which is
    no image): the folder's name itself. `folder[:-1]` would be read by a filer (SeaweedFS) as the
    directory's entry, and the listing would resume after all of the directory's keys."""
    return folder


def _check_order(start_after: str, page: list[S3Object]) -> None:
    """Raise OutOfOrderError unless the page's keys ascend, all after `start_after` (str order is
    UTF-8 byte order: S3's)."""
    before = start_after
    for obj in page:
        if obj.key <= before:
            raise OutOfOrderError(before, obj.key)
        before = obj.key


def _is_aws(endpoint: str) -> bool:
    host = (urlsplit(endpoint).hostname or "").lower()
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn"))


def _passed(last_key: str, folder: str) -> bool:
    """True when a listing that reached `last_key` has returned every key of `folder`."""
    return last_key > folder and not last_key.startswith(folder)


def _s3_object(item: Any) -> S3Object:
    return S3Object(item["Key"], item["Size"], item["ETag"].strip('"'), item["LastModified"])


def _list_error(bucket: str, prefix: str, code: str) -> S3Error | ConfigError:
    """The error of a failed listing: S3's error code (or the error) says whose fault it is."""
    message = f"S3 listing of s3://{bucket}/{prefix} failed: {code}"
    if code in _CONFIG_ERROR_CODES:
        return ConfigError(message + " (check AWS_S3_BUCKET and the AWS credentials)")
    return S3Error(message)
