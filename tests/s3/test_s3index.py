"""The S3 image index against moto: listing once per folder, name and content rules, the cache."""

from __future__ import annotations

import io
import math
import random
import struct
import zlib
from collections import Counter
from typing import Any

import pytest
from mypy_boto3_s3 import S3Client
from PIL import Image

from bulkimg.demo.samples import image_bytes
from bulkimg.images.cache import ProbeCache
from bulkimg.images.rules import ImageRules
from bulkimg.models import MissingReason, Rejection
from bulkimg.s3.client import RequestCounter
from bulkimg.s3.index import S3ImageIndex
from bulkimg.s3.keys import folder_for
from bulkimg.s3.listing import BucketLister
from bulkimg.s3.options import S3Options
from tests.helpers.env import BUCKET
from tests.helpers.fixtures import MakeSettings


def put(s3: S3Client, sku: str, name: str, body: bytes) -> str:
    key = folder_for(sku) + name
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return key


def run_index(
    s3: S3Client, settings: Any, skus: list[str]
) -> tuple[dict[str, Any], Any, RequestCounter]:
    counter = RequestCounter()
    counter.attach(s3)
    cache = ProbeCache(settings.cache_dir / "dimensions.sqlite")
    try:
        index = S3ImageIndex(
            s3, S3Options.from_settings(settings), ImageRules.from_settings(settings), cache
        )
        result = index.index(skus)
    finally:
        cache.close()
        counter.detach(s3)
    return result, index.stats, counter


def png_header(width: int, height: int) -> bytes:
    """A tiny file whose PNG header declares a huge size (a decompression bomb's head)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


def test_each_folder_is_listed_once_however_many_skus_share_it(
    s3: S3Client, make_settings: MakeSettings
) -> None:
    put(s3, "1102192", "1102192-1a-1.jpg", image_bytes("jpg", 300, 300))
    put(s3, "1102193", "1102193-1a-1.jpg", image_bytes("jpg", 300, 300))
    put(s3, "827749", "827749-1a-1.jpg", image_bytes("jpg", 300, 300))
    result, stats, counter = run_index(
        s3, make_settings(s3_list_strategy="folders"), ["1102192", "1102193", "827749"]
    )
    assert counter.calls["ListObjectsV2"] == 2
    assert stats.folders_needed == 2
    assert [a.key for a in result["1102192"].accepted] == ["sorted-media/11/02/19/1102192-1a-1.jpg"]
    assert [a.key for a in result["1102193"].accepted] == ["sorted-media/11/02/19/1102193-1a-1.jpg"]


def test_sweep_lists_a_prefix_in_fewer_requests_than_its_folders(
    s3: S3Client, make_settings: MakeSettings
) -> None:
    skus = [f"11{n:04d}" for n in range(0, 60)]
    for sku in skus:
        put(s3, sku, f"{sku}-1a-1.jpg", image_bytes("jpg", 210, 210))
    put(s3, "119999", "119999-1a-1.jpg", image_bytes("jpg", 210, 210))  # not in the catalog
    result, stats, counter = run_index(s3, make_settings(s3_list_strategy="sweep"), skus)
    assert stats.prefixes_swept == 1 and stats.strategy == "sweep"
    assert counter.calls["ListObjectsV2"] == 1
    assert all(len(result[sku].accepted) == 1 for sku in skus)
    # The folders strategy needs one request per folder for the same answer.
    _, _, by_folder = run_index(s3, make_settings(s3_list_strategy="folders"), skus)
    assert by_folder.calls["ListObjectsV2"] == 60
    # auto (skip-scan) sees the 60 folders in one page too, with no history.
    auto_result, auto_stats, auto = run_index(s3, make_settings(), skus)
    assert auto_stats.strategy == "skip-scan"
    assert auto.calls["ListObjectsV2"] == 1
    assert {s: r.accepted for s, r in auto_result.items()} == {
        s: r.accepted for s, r in result.items()
    }


def test_auto_strategy_lists_one_folder_in_one_request(
    s3: S3Client, make_settings: MakeSettings
) -> None:
    put(s3, "827749", "827749-1a-1.jpg", image_bytes("jpg", 300, 300))
    _, stats, counter = run_index(s3, make_settings(), ["827749"])
    assert stats.strategy == "skip-scan"
    assert counter.calls["ListObjectsV2"] == 1


# -- skip-scan listing ---------------------------------------------------------------------------


def put_keys(s3: S3Client, keys: list[str], body: bytes = b"x") -> None:
    """Put many objects straight into moto's backend (no request: thousands in a second)."""
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for key in keys:
        backend.put_object(BUCKET, key, body)


def lists(s3: S3Client, settings: Any, skus: list[str]) -> int:
    _, _, counter = run_index(s3, settings, skus)
    return counter.calls["ListObjectsV2"]


def test_skip_scan_lists_sparse_folders_once_each_jumping_over_the_rest(
    s3: S3Client, make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages of 5 keys stand for pages of 1,000: between two needed folders lie 12 other keys.
    monkeypatch.setattr("bulkimg.s3.listing.LIST_PAGE_SIZE", 5)
    skus = [f"{top}0101" for top in range(10, 30)]  # one folder in each of 20 prefixes
    for sku in skus:
        put_keys(s3, [f"{folder_for(sku)}{sku}-1b-{n}.jpg" for n in range(2)])
        put_keys(s3, [f"{folder_for(sku[:2] + '9')}{n}.txt" for n in range(12)])
    assert lists(s3, make_settings(), skus) == 20
    assert lists(s3, make_settings(s3_list_strategy="folders"), skus) == 20
    assert lists(s3, make_settings(s3_list_strategy="sweep"), skus) == 20 * math.ceil(14 / 5)


def test_skip_scan_lists_dense_folders_in_as_many_pages_as_their_objects_fill(
    s3: S3Client, make_settings: MakeSettings
) -> None:
    skus = [f"{top}0{n:03d}" for top in (11, 12) for n in range(40)]  # 80 folders
    for sku in skus:
        put_keys(s3, [f"{folder_for(sku)}{sku}-{n}b-1.jpg" for n in range(30)])  # 2,400 objects
    one_chain = make_settings(s3_workers=1)
    result, stats, counter = run_index(s3, one_chain, skus)
    assert counter.calls["ListObjectsV2"] == stats.list_pages == math.ceil(2400 / 1000)
    assert stats.objects_listed == 2400
    assert sum(len(result[sku].rejected) for sku in skus) == 2400
    # Parallel chains are cut between prefixes: never more requests than sweeping them.
    _, stats, counter = run_index(s3, make_settings(s3_workers=4), skus)
    assert stats.list_chains == 2
    assert counter.calls["ListObjectsV2"] == 4
    assert lists(s3, make_settings(s3_list_strategy="sweep"), skus) == 4
    assert lists(s3, make_settings(s3_list_strategy="folders"), skus) == 80


def test_skip_scan_pages_through_a_folder_of_more_than_a_thousand_objects(
    s3: S3Client, make_settings: MakeSettings
) -> None:
    big, before, after = "1102192", "1102000", "1103000"
    put_keys(s3, [f"{folder_for(big)}{big}-{n}b-1.jpg" for n in range(2500)])
    put_keys(s3, [f"{folder_for(before)}{before}-{n}b-1.jpg" for n in range(3)])
    put_keys(s3, [f"{folder_for(after)}{after}-{n}b-1.jpg" for n in range(3)])
    skus = [before, big, after]
    result, _, counter = run_index(s3, make_settings(), skus)
    # 3 + 997 keys, 1,000 keys, 503 + 3 keys.
    assert counter.calls["ListObjectsV2"] == 3
    assert [len(result[sku].rejected) for sku in skus] == [3, 2500, 3]
    assert lists(s3, make_settings(s3_list_strategy="folders"), skus) == 1 + 3 + 1


def random_world(s3: S3Client, seed: int) -> list[str]:
    """Clustered SKUs with files, noise and odd keys around their folders; the SKUs to index."""
    rng = random.Random(seed)
    catalog: list[str] = []
    for _ in range(rng.randint(5, 25)):
        base = rng.randrange(100_000, 140_000)
        for sku in sorted({str(base * 10 + rng.randrange(10)) for _ in range(rng.randint(1, 4))}):
            catalog.append(sku)
            folder = folder_for(sku)
            keys = [
                f"{folder}{sku}-{n}{rng.choice('aab')}-{n}.jpg" for n in range(rng.randint(0, 6))
            ]
            keys += [f"{folder}{rng.randrange(10**7)}-1a-1.jpg" for _ in range(rng.randint(0, 3))]
            odd = [
                folder,
                folder[:-1],
                folder[:-1] + "-old/" + sku + "-1a-1.jpg",
                folder + "sub/" + sku + "-2a-1.jpg",
                folder[:-1] + "0/" + sku + "-3a-1.jpg",
            ]
            keys += rng.sample(odd, rng.randint(0, 2))
            put_keys(s3, keys, image_bytes("jpg", 210, 210))
    needed = rng.sample(catalog, max(1, len(catalog) // 2))
    return needed + [str(rng.randrange(1_000_000, 1_400_000)) for _ in range(3)]  # no files


@pytest.mark.parametrize("seed", range(4))
def test_skip_scan_finds_the_same_files_as_listing_each_folder(
    s3: S3Client, make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    monkeypatch.setattr("bulkimg.s3.listing.LIST_PAGE_SIZE", random.Random(seed).randint(2, 9))
    skus = random_world(s3, seed)
    workers = 1 + seed % 3
    by_folder, _, folders = run_index(s3, make_settings(s3_list_strategy="folders"), skus)
    swept, _, sweep = run_index(s3, make_settings(s3_list_strategy="sweep"), skus)
    skipped, _, skip = run_index(s3, make_settings(s3_workers=workers), skus)

    def files(result: dict[str, Any]) -> dict[str, Any]:
        return {
            sku: (images.accepted, sorted((r.key, r.reason) for r in images.rejected))
            for sku, images in result.items()
        }

    assert files(skipped) == files(by_folder) == files(swept)
    assert skip.calls["ListObjectsV2"] <= folders.calls["ListObjectsV2"]
    assert skip.calls["ListObjectsV2"] <= sweep.calls["ListObjectsV2"]


def test_names_sizes_and_formats_are_filtered_with_reasons(
    s3: S3Client, make_settings: MakeSettings
) -> None:
    sku = "827749"
    put(s3, sku, f"{sku}-1a-12345.JPG", image_bytes("jpg", 800, 600))
    put(s3, sku, f"{sku}-10a-1.webp", image_bytes("webp", 400, 400))
    put(s3, sku, f"{sku}-2a-1.png", image_bytes("png", 400, 400))
    put(s3, sku, f"{sku}-1b-12345.jpg", image_bytes("jpg", 800, 600))
    put(s3, sku, f"{sku}-thumbnail.jpg", image_bytes("jpg", 800, 600))
    put(s3, sku, f"{sku}-3a-12345.txt", b"text")
    put(s3, sku, f"{sku}-4a-1.jpg", image_bytes("jpg", 199, 800))
    put(s3, sku, f"{sku}-5a-1.jpg", image_bytes("jpg", 800, 199))
    put(s3, sku, f"{sku}-6a-1.jpg", image_bytes("png", 800, 800))
    put(s3, sku, f"{sku}-7a-1.jpg", b"not an image at all, just text")
    put(s3, sku, f"{sku}-8a-1.png", png_header(60_000, 60_000))
    put(s3, sku, f"{sku}-9a-1.gif", b"")
    result, _, _ = run_index(s3, make_settings(), [sku])
    images = result[sku]
    assert [(a.variation, a.width, a.height, a.format) for a in images.accepted] == [
        (1, 800, 600, "jpeg"),
        (2, 400, 400, "png"),
        (10, 400, 400, "webp"),
    ]
    reasons = {r.key.rsplit("/", 1)[1]: r.reason for r in images.rejected}
    assert reasons == {
        f"{sku}-1b-12345.jpg": Rejection.SUFFIX,
        f"{sku}-thumbnail.jpg": Rejection.PATTERN,
        f"{sku}-3a-12345.txt": Rejection.EXTENSION,
        f"{sku}-4a-1.jpg": Rejection.TOO_SMALL,
        f"{sku}-5a-1.jpg": Rejection.TOO_SMALL,
        f"{sku}-6a-1.jpg": Rejection.FORMAT_MISMATCH,
        f"{sku}-7a-1.jpg": Rejection.CORRUPT,
        f"{sku}-8a-1.png": Rejection.TOO_MANY_PIXELS,
        f"{sku}-9a-1.gif": Rejection.EMPTY,
    }


def test_newest_file_wins_a_variation_and_the_other_is_superseded(
    s3: S3Client, make_settings: MakeSettings
) -> None:
    import time

    old = put(s3, "827749", "827749-2a-1.jpg", image_bytes("jpg", 300, 300))
    time.sleep(1.1)  # S3's LastModified has one-second resolution
    new = put(s3, "827749", "827749-2a-0.png", image_bytes("png", 300, 300))
    result, _, _ = run_index(s3, make_settings(), ["827749"])
    assert [a.key for a in result["827749"].accepted] == [new]
    assert [(r.key, r.reason) for r in result["827749"].rejected] == [(old, Rejection.SUPERSEDED)]


def test_jpeg_with_size_marker_past_150kb_is_read_without_downloading_it(
    s3: S3Client, make_settings: MakeSettings
) -> None:
    out = io.BytesIO()
    noise = Image.effect_noise((900, 700), 80).convert("RGB")
    noise.save(out, "JPEG", quality=90, icc_profile=bytes(range(256)) * 700)  # 179 KB of ICC
    body = out.getvalue()
    sof = read_image_header_offset(body)
    assert sof > 150_000
    put(s3, "827749", "827749-1a-1.jpg", body)
    result, stats, counter = run_index(s3, make_settings(), ["827749"])
    assert [(a.width, a.height) for a in result["827749"].accepted] == [(900, 700)]
    # The ICC segments' bodies are skipped: far less than the bytes before the marker is read.
    assert stats.bytes_read[0] < sof * 0.75
    assert stats.bytes_read[0] < len(body) // 3
    assert 2 <= counter.calls["GetObject"] <= 5


def read_image_header_offset(jpeg: bytes) -> int:
    """Offset of the first SOF0 marker, walking the segments."""
    pos = 2
    while jpeg[pos + 1] != 0xC0:
        pos += 2 + struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
    return pos


def test_second_index_with_no_change_makes_no_get(
    s3: S3Client, make_settings: MakeSettings
) -> None:
    for n in range(1, 4):
        put(s3, "827749", f"827749-{n}a-1.jpg", image_bytes("jpg", 300, 300))
    put(s3, "827749", "827749-4a-1.jpg", image_bytes("jpg", 100, 100))
    settings = make_settings()
    first, _, cold = run_index(s3, settings, ["827749"])
    second, stats, warm = run_index(s3, settings, ["827749"])
    assert cold.calls["GetObject"] == 4
    assert warm.calls.get("GetObject", 0) == 0
    assert stats.cache_hits == 4
    assert second["827749"].accepted == first["827749"].accepted
    assert [r.reason for r in second["827749"].rejected] == [Rejection.TOO_SMALL]


def test_a_warm_index_asks_the_cache_one_batch_at_a_time(
    s3: S3Client, make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache's answers for a whole catalog at once cost ~250 bytes per image (90 MB at
    200,000 images): a warm build asks for at most CACHE_BATCH keys and holds only those."""
    from bulkimg.s3 import index as s3index

    monkeypatch.setattr(s3index, "CACHE_BATCH", 3)
    body = image_bytes("png", 300, 300)
    for n in range(1, 11):
        put(s3, "827749", f"827749-{n}a-1.png", body)
    settings = make_settings()
    run_index(s3, settings, ["827749"])
    asked: list[int] = []
    get_many = ProbeCache.get_many

    def recording(self: ProbeCache, bucket: str, objects: Any) -> Any:
        asked.append(len(objects))
        return get_many(self, bucket, objects)

    monkeypatch.setattr(ProbeCache, "get_many", recording)
    result, stats, counter = run_index(s3, settings, ["827749"])
    assert asked == [3, 3, 3, 1]
    assert stats.cache_hits == 10 and len(result["827749"].accepted) == 10
    assert "GetObject" not in counter.calls


def test_replaced_object_is_read_again(s3: S3Client, make_settings: MakeSettings) -> None:
    settings = make_settings()
    put(s3, "827749", "827749-1a-1.jpg", image_bytes("jpg", 300, 300))
    run_index(s3, settings, ["827749"])
    put(s3, "827749", "827749-1a-1.jpg", image_bytes("jpg", 640, 480))
    result, _, counter = run_index(s3, settings, ["827749"])
    assert counter.calls["GetObject"] == 1
    assert [(a.width, a.height) for a in result["827749"].accepted] == [(640, 480)]


def test_file_over_the_byte_limit_is_rejected_from_the_listing(
    s3: S3Client, make_settings: MakeSettings
) -> None:
    put(s3, "827749", "827749-1a-1.jpg", image_bytes("jpg", 300, 300))
    result, _, counter = run_index(s3, make_settings(max_image_bytes=1000), ["827749"])
    assert [r.reason for r in result["827749"].rejected] == [Rejection.FILE_TOO_LARGE]
    assert counter.calls.get("GetObject", 0) == 0


@pytest.mark.fault_matrix(
    area="S3",
    fault="object deleted between listing and reading (index level)",
    outcome="rejected as changed, not cached; indexing goes on",
)
def test_object_deleted_between_listing_and_reading_is_rejected_not_fatal(
    s3: S3Client, make_settings: MakeSettings
) -> None:
    key = put(s3, "827749", "827749-1a-1.jpg", image_bytes("jpg", 300, 300))
    settings = make_settings()
    cache = ProbeCache(settings.cache_dir / "d.sqlite")
    index = S3ImageIndex(
        s3, S3Options.from_settings(settings), ImageRules.from_settings(settings), cache
    )
    original = index._list_and_classify

    def list_then_delete(*args: Any) -> Any:
        candidates = original(*args)
        s3.delete_object(Bucket=BUCKET, Key=key)
        return candidates

    index._list_and_classify = list_then_delete  # type: ignore[method-assign]
    result = index.index(["827749"])
    assert [r.reason for r in result["827749"].rejected] == [Rejection.CHANGED]
    assert cache.get(BUCKET, key, result["827749"].rejected[0].key) is None
    cache.close()


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        ([], MissingReason.NO_OBJECTS),
        (["827749-1b-1.jpg", "827749-x.jpg"], MissingReason.NO_MATCH),
        (["827749-1a-1.jpg"], MissingReason.ALL_INVALID),
    ],
)
def test_missing_reason_says_why_a_sku_has_no_image(
    s3: S3Client, make_settings: MakeSettings, files: list[str], reason: MissingReason
) -> None:
    for name in files:
        put(s3, "827749", name, image_bytes("jpg", 120, 120))
    result, _, _ = run_index(s3, make_settings(), ["827749"])
    assert result["827749"].missing_reason is reason


@pytest.mark.fault_matrix(
    area="S3",
    fault="bucket does not exist (NoSuchBucket)",
    outcome="ConfigError naming NoSuchBucket (exit 2)",
)
def test_missing_bucket_is_a_configuration_error(s3: S3Client, make_settings: MakeSettings) -> None:
    from bulkimg.errors import ConfigError

    with pytest.raises(ConfigError, match="NoSuchBucket"):
        run_index(s3, make_settings(aws_s3_bucket="no-such-bucket"), ["827749"])


def test_the_cache_answers_many_keys_at_once_only_for_their_own_etag(tmp_path: Any) -> None:
    from bulkimg.models import ImageProbe

    cache = ProbeCache(tmp_path / "c.sqlite")
    rows = [
        (f"f/{n:04d}.jpg", f"e{n}", ImageProbe("jpeg", 300 + n, 300, None)) for n in range(1200)
    ]
    cache.put_many(BUCKET, rows)
    asked = [(key, etag) for key, etag, _ in rows[::2]] + [("f/0001.jpg", "old"), ("nope", "e")]
    found = cache.get_many(BUCKET, asked)
    assert found == {(key, etag): probe for key, etag, probe in rows[::2]}
    assert cache.get_many("other-bucket", asked) == {}
    cache.close()


@pytest.mark.fault_matrix(
    area="S3",
    fault="a listing server that ignores StartAfter (every page starts from the prefix's first"
    " key)",
    outcome="the skip-scan stops at the first page starting at or before its StartAfter and the"
    " run lists folder by folder: the same files as listing each folder; strategy folders,"
    " the why and a warning",
)
def test_a_listing_that_ignores_start_after_switches_to_folders_and_misses_nothing(
    s3: S3Client, make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bulkimg.s3.listing.LIST_PAGE_SIZE", 3)
    skus = random_world(s3, 1)
    expected, _, _ = run_index(s3, make_settings(s3_list_strategy="folders"), skus)
    original = BucketLister._list_page

    def ignoring_start_after(self: BucketLister, prefix: str, start_after: str) -> Any:
        return original(self, prefix, "")

    monkeypatch.setattr(BucketLister, "_list_page", ignoring_start_after)
    got, stats, _ = run_index(s3, make_settings(s3_workers=2), skus)

    def files(result: dict[str, Any]) -> dict[str, Any]:
        return {
            sku: (images.accepted, sorted((r.key, r.reason) for r in images.rejected))
            for sku, images in result.items()
        }

    assert files(got) == files(expected)
    assert sum(len(images.accepted) for images in got.values()) > 0
    assert stats.strategy == "folders"
    assert stats.strategy_reason.startswith("switched from skip-scan: S3 listed out of")
    assert len(stats.warnings) == 1
    assert "S3's byte order" in stats.warnings[0] and "each folder" in stats.warnings[0]
    assert stats.rejected == Counter(r.reason.value for i in got.values() for r in i.rejected)


def test_an_aws_listing_is_checked_and_says_why_it_skip_scans(
    s3: S3Client, make_settings: MakeSettings
) -> None:
    skus = random_world(s3, 2)
    _, stats, _ = run_index(s3, make_settings(), skus)
    assert stats.strategy == "skip-scan"
    assert stats.strategy_reason == "auto: S3 lists keys in byte order after StartAfter"
    assert stats.warnings == []
