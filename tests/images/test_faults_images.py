"""Hostile and malformed image files: bombs, lying formats, truncation, odd but valid images."""

from __future__ import annotations

import hashlib
import io
import re
import sqlite3
import struct
import tracemalloc
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from bulkimg.config import Settings
from bulkimg.images.cache import ProbeCache
from bulkimg.images.header import (
    ByteWindows,
    ImageFormat,
    ImageHeader,
    InvalidImage,
    NeedBytes,
    read_image_header,
    read_image_header_from_bytes,
)
from bulkimg.images.rules import ImageRules
from bulkimg.models import ImageProbe, Rejection, SkuImages
from bulkimg.s3.index import S3ImageIndex
from bulkimg.s3.keys import folder_for
from bulkimg.s3.options import S3Options
from tests.helpers.fixtures import MakeSettings

SKU = "827749"
FOLDER = folder_for(SKU)


class FakeS3:
    """Just enough of an S3 client for the index: one listing page and ranged GETs, recorded.

    Cheap enough for hypothesis (moto costs ~50 ms per call); every GET's range is checked
    against the object's size as S3 would see it.
    """

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects
        self.ranges: list[tuple[str, int, int]] = []  # key, first byte, last byte

    def get_paginator(self, name: str) -> FakeS3:
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str, **_: Any) -> Iterator[dict[str, Any]]:  # noqa: N803
        yield self.list_objects_v2(Prefix=Prefix, MaxKeys=len(self.objects))

    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        """One page of the keys under Prefix after StartAfter, in order (the skip-scan's call)."""
        prefix, after = kwargs["Prefix"], kwargs.get("StartAfter", "")
        limit = kwargs.get("MaxKeys", 1000)
        stamp = datetime(2026, 1, 1, tzinfo=UTC)
        keys = sorted(k for k in self.objects if k.startswith(prefix) and k > after)
        contents = [
            {"Key": k, "Size": len(v), "ETag": f'"{_etag(v)}"', "LastModified": stamp}
            for k, v in ((k, self.objects[k]) for k in keys[:limit])
        ]
        return {"Contents": contents, "IsTruncated": len(keys) > limit}

    def get_object(self, Bucket: str, Key: str, Range: str, IfMatch: str) -> dict[str, Any]:  # noqa: N803
        data = self.objects[Key]
        assert IfMatch == f'"{_etag(data)}"'
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", Range)
        assert match, Range
        first, last = int(match[1]), int(match[2])
        assert 0 <= first <= last < len(data), f"{Range} outside a {len(data)}-byte object"
        self.ranges.append((Key, first, last))
        return {"Body": io.BytesIO(data[first : last + 1])}

    def bytes_read(self, key: str) -> int:
        return sum(last - first + 1 for k, first, last in self.ranges if k == key)


def _etag(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # S3's ETag of a single-part upload


def index_files(config: Settings, files: dict[str, bytes]) -> tuple[SkuImages, FakeS3]:
    """Index `files` (names in SKU's folder) with a fresh, in-memory probe cache."""
    client = FakeS3({FOLDER + name: data for name, data in files.items()})
    cache = ProbeCache(Path(":memory:"))
    # FakeS3 stands in for boto3's client; the ranges read do not depend on the GET path.
    config = config.model_copy(update={"s3_get_client": "boto3"})
    try:
        result = S3ImageIndex(
            client, S3Options.from_settings(config), ImageRules.from_settings(config), cache
        ).index([SKU])  # type: ignore[arg-type]
    finally:
        cache.close()
    return result[SKU], client


def verdicts(images: SkuImages) -> dict[str, tuple[str, str]]:
    """file name -> ("accepted", "<format> WxH") or (rejection reason, detail)."""
    out = {
        a.key.rsplit("/", 1)[1]: ("accepted", f"{a.format} {a.width}x{a.height}")
        for a in images.accepted
    }
    out |= {r.key.rsplit("/", 1)[1]: (r.reason.value, r.detail) for r in images.rejected}
    return out


@pytest.fixture
def no_pillow_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything opens or decodes an image with Pillow."""

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("Pillow was asked to open or decode an image")

    monkeypatch.setattr(Image, "open", refuse)
    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    monkeypatch.setattr(Image.Image, "load", refuse)


# --- hand-made headers ----------------------------------------------------------------------


def png(width: int, height: int, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    idat = b"IDAT" + zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(c) - 4) + c + struct.pack(">I", zlib.crc32(c)) for c in (ihdr, idat)
    )


def gif(width: int, height: int, frame: tuple[int, int] | None = None) -> bytes:
    """Screen `width` x `height` (2-colour table), one frame of `frame` size at 0,0."""
    frame_w, frame_h = frame or (width, height)
    screen = struct.pack("<HH", width, height) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
    image = b"\x2c" + struct.pack("<HHHH", 0, 0, frame_w, frame_h) + b"\x00\x02\x02\x4c\x01\x00"
    return b"GIF89a" + screen + image + b";"


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof = b"\xff\xc0\x00\x11\x08" + struct.pack(">HH", height, width) + b"\x03"
    sof += b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + app0 + sof + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x00" * 32


def webp(width: int, height: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00"
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


BOMBS = [
    ("png", png(60_000, 60_000)),
    ("gif", gif(60_000, 60_000)),
    ("gif", gif(300, 300, frame=(60_000, 60_000))),  # decoders grow the canvas to the frame
    ("jpg", jpeg(60_000, 60_000)),
    ("webp", webp(60_000, 60_000)),
]


@pytest.mark.fault_matrix(
    area="Images",
    fault="decompression bomb: 60000x60000 declared in a tiny PNG/GIF/JPEG/WebP, or a GIF"
    " whose 300x300 screen holds a 60000x60000 first frame",
    outcome="rejected by the pixel limit from one ranged GET of the header; Pillow never runs",
)
def test_decompression_bombs_are_rejected_from_the_header_without_decoding(
    make_settings: MakeSettings, no_pillow_decode: None
) -> None:
    files = {f"{SKU}-{n}a-1.{ext}": data for n, (ext, data) in enumerate(BOMBS, 1)}
    images, client = index_files(make_settings(), files)
    assert images.accepted == []
    assert verdicts(images) == {
        name: (Rejection.TOO_MANY_PIXELS.value, "60000x60000 > 20.0 MP") for name in files
    }
    assert len(client.ranges) == len(files)  # one GET each
    assert all(client.bytes_read(FOLDER + name) == len(data) < 200 for name, data in files.items())


@pytest.mark.fault_matrix(
    area="Images",
    fault="image exactly at and one row over the pixel limit (20 MP)",
    outcome="20,000,000 pixels accepted, 20,005,000 rejected (too many pixels)",
)
def test_pixel_limit_is_inclusive(make_settings: MakeSettings) -> None:
    files = {f"{SKU}-1a-1.png": png(5000, 4000), f"{SKU}-2a-1.png": png(5000, 4001)}
    images, _ = index_files(make_settings(), files)
    assert verdicts(images) == {
        f"{SKU}-1a-1.png": ("accepted", "png 5000x4000"),
        f"{SKU}-2a-1.png": (Rejection.TOO_MANY_PIXELS.value, "5000x4001 > 20.0 MP"),
    }


# --- bytes that lie about their format ------------------------------------------------------


def pillow_image(fmt: str, size: tuple[int, int] = (300, 240), **params: Any) -> bytes:
    mode = params.pop("mode", "RGB")
    im = Image.linear_gradient("L").resize(size).convert(mode)
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def animated(fmt: str, size: tuple[int, int] = (300, 240)) -> bytes:
    frames = [Image.new("RGB", size, colour) for colour in ("red", "green", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


@pytest.mark.fault_matrix(
    area="Images",
    fault="bytes that lie about their format (.jpg holding PNG, .png holding HTML or text,"
    " random bytes, a WAV or PDF named as an image, an empty file)",
    outcome="each rejected with its reason (format mismatch naming both formats, not an"
    " image, empty); an honest file with an upper-case extension is accepted",
)
def test_bytes_that_lie_about_their_format_are_rejected_with_the_reason(
    make_settings: MakeSettings,
) -> None:
    noise = bytes((i * 151 + 7) % 256 for i in range(4096))
    files = {
        f"{SKU}-1a-1.jpg": pillow_image("PNG"),
        f"{SKU}-2a-1.png": b"<!DOCTYPE html><html><body>Access Denied</body></html>",
        f"{SKU}-3a-1.png": b"just some text\n" * 40,
        f"{SKU}-4a-1.gif": noise,
        f"{SKU}-5a-1.webp": pillow_image("JPEG"),
        f"{SKU}-6a-1.jpeg": pillow_image("WEBP"),
        f"{SKU}-7a-1.png": b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32),
        f"{SKU}-8a-1.jpg": b"%PDF-1.7\n" + bytes(100),
        f"{SKU}-9a-1.gif": b"",
        f"{SKU}-10a-1.PNG": pillow_image("PNG"),
    }
    images, _ = index_files(make_settings(), files)
    not_an_image = (Rejection.CORRUPT.value, "not a JPEG/PNG/GIF/WebP file")
    assert verdicts(images) == {
        f"{SKU}-1a-1.jpg": (Rejection.FORMAT_MISMATCH.value, "png bytes in a .jpg file"),
        f"{SKU}-2a-1.png": not_an_image,
        f"{SKU}-3a-1.png": not_an_image,
        f"{SKU}-4a-1.gif": not_an_image,
        f"{SKU}-5a-1.webp": (Rejection.FORMAT_MISMATCH.value, "jpeg bytes in a .webp file"),
        f"{SKU}-6a-1.jpeg": (Rejection.FORMAT_MISMATCH.value, "webp bytes in a .jpeg file"),
        f"{SKU}-7a-1.png": not_an_image,
        f"{SKU}-8a-1.jpg": not_an_image,
        f"{SKU}-9a-1.gif": (Rejection.EMPTY.value, ""),
        f"{SKU}-10a-1.PNG": ("accepted", "png 300x240"),
    }


# --- odd but valid images -------------------------------------------------------------------

ODD_VALID = {
    # Shopify takes GIF and WebP (shopify-facts.md: "JPEG, PNG, GIF, WebP accepted") and the spec
    # accepts .gif/.webp with no rule on frames: an animated file is judged by its canvas size.
    "1a-1.gif": lambda: animated("GIF"),
    "2a-1.webp": lambda: animated("WEBP"),
    # Colour model and bit depth are not in the spec's rules or Shopify's facts: accepted.
    "3a-1.jpg": lambda: pillow_image("JPEG", mode="CMYK"),
    "4a-1.png": lambda: pillow_image("PNG", mode="I;16"),
    "5a-1.png": lambda: pillow_image("PNG", mode="RGBA"),
    "6a-1.jpg": lambda: pillow_image("JPEG", progressive=True),
}


@pytest.mark.fault_matrix(
    area="Images",
    fault="animated GIF and WebP, CMYK JPEG, 16-bit PNG, RGBA PNG, progressive JPEG",
    outcome="accepted with the canvas size Pillow reports (Shopify takes GIF/WebP; the spec"
    " has no rule on frames, colour model or bit depth)",
)
def test_animated_gif_webp_cmyk_jpeg_and_16_bit_png_are_accepted_at_their_canvas_size(
    make_settings: MakeSettings,
) -> None:
    files = {f"{SKU}-{name}": make() for name, make in ODD_VALID.items()}
    for data in files.values():
        with Image.open(io.BytesIO(data)) as im:
            assert im.size == (300, 240)
            assert getattr(im, "n_frames", 1) in (1, 3)
    with Image.open(io.BytesIO(files[f"{SKU}-1a-1.gif"])) as im:
        assert im.n_frames == 3  # really animated
    with Image.open(io.BytesIO(files[f"{SKU}-4a-1.png"])) as im:
        assert im.mode.startswith("I;16") or im.mode == "I"  # really 16 bits per sample
    images, _ = index_files(make_settings(), files)
    fmt = {"gif": "gif", "webp": "webp", "jpg": "jpeg", "png": "png"}
    assert verdicts(images) == {
        name: ("accepted", f"{fmt[name.rsplit('.', 1)[1]]} 300x240") for name in files
    }


# --- truncated files ------------------------------------------------------------------------


@pytest.mark.fault_matrix(
    area="Images",
    fault="file truncated at every byte offset of its header (JPEG with EXIF, PNG, GIF,"
    " WebP VP8/VP8L/VP8X)",
    outcome="no exception and no GET outside the object: each cut is accepted with the full"
    " size once the size field is in, else rejected as empty, truncated or not an image",
)
@pytest.mark.parametrize(
    "kind",
    ["jpeg-exif", "png", "gif", "webp-lossy", "webp-lossless", "webp-alpha"],
)
def test_file_cut_at_every_offset_is_the_full_size_or_a_clean_rejection(
    kind: str, make_settings: MakeSettings
) -> None:
    data = {
        "jpeg-exif": lambda: pillow_image("JPEG", exif=b"Exif\x00\x00" + bytes(300)),
        "png": lambda: pillow_image("PNG"),
        "gif": lambda: animated("GIF"),
        "webp-lossy": lambda: pillow_image("WEBP"),
        "webp-lossless": lambda: pillow_image("WEBP", lossless=True),
        "webp-alpha": lambda: pillow_image("WEBP", mode="RGBA"),
    }[kind]()
    ext = {"j": "jpg", "p": "png", "g": "gif", "w": "webp"}[kind[0]]
    cuts = range(min(len(data), 600) + 1)
    files = {f"{SKU}-{n + 1}a-1.{ext}": data[:n] for n in cuts}
    files[f"{SKU}-99999a-1.{ext}"] = data
    images, _ = index_files(make_settings(), files)
    found = verdicts(images)
    assert found.pop(f"{SKU}-99999a-1.{ext}")[0] == "accepted"
    full = f"{ {'jpg': 'jpeg'}.get(ext, ext) } 300x240"
    first_accepted = None
    for n in cuts:
        verdict, detail = found[f"{SKU}-{n + 1}a-1.{ext}"]
        if verdict == "accepted":
            assert detail == full
            first_accepted = n if first_accepted is None else first_accepted
            continue
        assert first_accepted is None, f"cut {n} rejected after cut {first_accepted} was accepted"
        if n == 0:
            assert verdict == Rejection.EMPTY.value
        else:
            assert verdict == Rejection.CORRUPT.value
            assert detail.startswith(("truncated ", "not a JPEG/PNG/GIF/WebP file")), (n, detail)
    assert first_accepted is not None


# --- arbitrary bytes ------------------------------------------------------------------------

MAGICS = [
    b"",
    b"\xff\xd8\xff",
    b"\xff\xd8\xff\xe1\x7f\xf0Exif\x00\x00",  # a 32 KB APP1: the next marker is far away
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR",
    b"GIF89a",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"RIFF\x00\x00\x00\x00WEBPVP8L",
    b"RIFF\x00\x00\x00\x00WEBPVP8X",
]
# JPEG segments of any length (so the walk jumps around the file), fill, stray and SOF bytes.
jpeg_soup = st.lists(
    st.integers(min_value=0, max_value=3000).map(lambda n: b"\xff\xe2" + struct.pack(">H", n))
    | st.sampled_from([b"\xff", b"\x00", b"\xff\xd0", b"\xff\xc0\x00\x11\x08\x01\x00\x01"]),
    max_size=40,
).map(b"".join)
EXTENSION = {None: "jpg", "jpeg": "jpg", "png": "png", "gif": "gif", "webp": "webp"}
PROBE_MAX = 1024  # the smallest the settings allow, so that the fuzz reaches the limit


@pytest.mark.fault_matrix(
    area="Images",
    fault="arbitrary bytes (random, or after a real magic number, or a soup of JPEG markers"
    " and segment lengths) behind an image name",
    outcome="never an exception; every ranged GET inside the object; bytes read never over"
    " probe_max_bytes; an accepted image has the size the whole file's header gives",
)
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    magic=st.sampled_from(MAGICS),
    body=st.binary(max_size=3000) | jpeg_soup,
    padding=st.integers(min_value=0, max_value=6000),
)
def test_arbitrary_bytes_never_raise_nor_read_outside_the_object_or_over_the_limit(
    make_settings: MakeSettings, magic: bytes, body: bytes, padding: int
) -> None:
    data = magic + body + bytes(padding)
    try:
        whole: ImageHeader | None = read_image_header_from_bytes(data)
    except InvalidImage:
        whole = None
    ext = EXTENSION[whole.format.value if whole else None]
    config = make_settings(
        probe_initial_bytes=64, probe_max_bytes=PROBE_MAX, min_width=1, min_height=1,
        max_megapixels=1e13,
    )  # fmt: skip
    name = f"{SKU}-1a-1.{ext}"
    images, client = index_files(config, {name: data})
    assert client.bytes_read(FOLDER + name) <= PROBE_MAX
    [(verdict, detail)] = verdicts(images).values()
    if verdict == "accepted":
        assert whole is not None and detail == f"{whole.format} {whole.width}x{whole.height}"
    else:
        assert verdict in {Rejection.CORRUPT, Rejection.MARKER_TOO_FAR, Rejection.EMPTY}
        assert detail or verdict == Rejection.EMPTY


# --- JPEGs that make the marker walk long ---------------------------------------------------

MB4 = 4 * 1024 * 1024
HOSTILE_WALKS = {
    # 4-byte segments: a million markers to walk
    "tiny-segments": b"\xff\xd8" + b"\xff\xe0\x00\x02" * (MB4 // 4 - 1),
    # one endless run of fill bytes
    "fill": b"\xff\xd8" + b"\xff" * (MB4 - 2),
    # 16 KiB segments: each ranged GET ends just before the next marker
    "16k-segments": b"\xff\xd8" + (b"\xff\xe1\x40\x00" + bytes(16 * 1024 - 2)) * 255,
    # a GIF comment of 16,000 full sub-blocks before any frame
    "gif-comment": b"GIF89a\x2c\x01\x2c\x01\x00\x00\x00\x21\xfe" + (b"\xff" + b"a" * 255) * 16_000,
}


class CountingWindows(ByteWindows):
    reads = 0

    def read(self, offset: int, length: int) -> bytes:
        CountingWindows.reads += 1
        return super().read(offset, length)


def walk_like_the_probe(data: bytes, first: int = 64 * 1024, more: int = 16 * 1024) -> str:
    """The probe's loop without S3: a first range, then `more` bytes where the parser points."""
    windows = CountingWindows(total_size=len(data))
    offset, length = 0, first
    while True:
        windows.add(offset, data[offset : offset + length])
        try:
            read_image_header(windows)
        except NeedBytes as need:
            if windows.bytes_held >= MB4:
                return "probe limit"
            offset, length = need.offset, min(max(need.length, more), len(data) - need.offset)
            continue
        except InvalidImage as bad:
            return bad.reason
        return "header"


@pytest.mark.fault_matrix(
    area="Images",
    fault="4 MB JPEGs and GIFs built to make the header walk long (a million 4-byte segments,"
    " endless fill bytes, 255 segments each just past a ranged GET, a 4 MB GIF comment)",
    outcome="rejected (too many segments, no marker, no SOF, no frame) after a bounded number"
    " of reads; the index reads at most probe_max_bytes",
)
def test_marker_walk_is_bounded_on_hostile_jpeg_and_gif_files(make_settings: MakeSettings) -> None:
    CountingWindows.reads = 0
    reasons = {name: walk_like_the_probe(data) for name, data in HOSTILE_WALKS.items()}
    assert reasons == {
        "tiny-segments": "bad JPEG: over 1024 segments before the frame",
        "fill": "bad JPEG: no marker found near offset 4097",
        "16k-segments": "truncated JPEG: no SOF marker before end of file",
        "gif-comment": "truncated GIF: file ends before the first frame",  # walked to its end
    }
    # Before the fix the walk re-read every tiny segment on each new range (and each read
    # copied the rest of the held bytes): 119 s of CPU for one 1 MB file. ~175,000 reads now.
    assert CountingWindows.reads < 250_000

    files = {
        f"{SKU}-{n}a-1.{'gif' if name.startswith('gif') else 'jpg'}": data
        for n, (name, data) in enumerate(HOSTILE_WALKS.items(), 1)
    }
    images, client = index_files(make_settings(), files)
    assert not images.accepted
    assert {r.reason for r in images.rejected} <= {Rejection.CORRUPT, Rejection.MARKER_TOO_FAR}
    assert all(client.bytes_read(FOLDER + name) <= MB4 for name in files)


GIF_SCREEN = b"GIF89a" + struct.pack("<HHBBB", 300, 300, 0, 0, 0)
GIF_FRAME = b"\x2c" + struct.pack("<HHHHB", 0, 0, 300, 300, 0) + b"\x02\x02\x44\x01\x00;"


@pytest.mark.fault_matrix(
    area="Images",
    fault="an 18 MB GIF of 6 million empty extension blocks before its frame",
    outcome="rejected as corrupt (over 4096 extensions) after one 64 KiB GET and a walk of each"
    " block once (was 253 GETs, 4 MB and ~3 min of CPU)",
)
def test_a_gif_of_millions_of_empty_extensions_is_decided_in_one_get(
    make_settings: MakeSettings,
) -> None:
    data = GIF_SCREEN + b"\x21\xfe\x00" * (6 * 1024 * 1024) + GIF_FRAME
    images, client = index_files(make_settings(), {f"{SKU}-1a-1.gif": data})
    assert verdicts(images) == {
        f"{SKU}-1a-1.gif": (
            Rejection.CORRUPT.value,
            "bad GIF: over 4096 extensions before a frame",
        )
    }
    assert len(client.ranges) == 1
    assert client.bytes_read(FOLDER + f"{SKU}-1a-1.gif") == 64 * 1024


@pytest.mark.fault_matrix(
    area="Images",
    fault="GIF with a 1.3 MB XMP packet (5,000 sub-blocks) before its frame",
    outcome="accepted at the size Pillow reports, in a few GETs (ranges double while the walk"
    " runs on); it was rejected as corrupt (a 4,096 sub-block cap)",
)
def test_a_gif_with_a_large_xmp_packet_is_accepted_in_a_few_gets(
    make_settings: MakeSettings,
) -> None:
    xmp = b"\x21\xff\x0bXMP DataXMP" + (b"\xff" + b"x" * 255) * 5_000 + b"\x00"
    data = GIF_SCREEN + xmp + GIF_FRAME
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (300, 300)
    images, client = index_files(make_settings(), {f"{SKU}-1a-1.gif": data})
    assert verdicts(images) == {f"{SKU}-1a-1.gif": ("accepted", "gif 300x300")}
    assert len(client.ranges) <= 8
    assert client.bytes_read(FOLDER + f"{SKU}-1a-1.gif") <= len(data)  # no byte read twice


@pytest.mark.fault_matrix(
    area="Images",
    fault="PNG whose IHDR checksum is wrong, or whose bit depth and colour type do not go"
    " together (e.g. 4-bit RGB, 16-bit palette)",
    outcome="rejected as corrupt (Pillow refuses them too); they were accepted",
)
@pytest.mark.parametrize(
    ("ihdr", "crc_delta", "detail"),
    [
        ((8, 2), 1, "bad PNG: IHDR checksum mismatch"),
        ((4, 2), 0, "bad PNG: bit depth 4 with colour type 2"),
        ((16, 3), 0, "bad PNG: bit depth 16 with colour type 3"),
    ],
    ids=["crc", "rgb-4-bit", "palette-16-bit"],
)
def test_a_png_with_a_broken_ihdr_is_rejected_as_corrupt(
    make_settings: MakeSettings, ihdr: tuple[int, int], crc_delta: int, detail: str
) -> None:
    data = bytearray(png(400, 400, *ihdr))
    crc_at = 8 + 4 + 4 + 13
    data[crc_at : crc_at + 4] = struct.pack(
        ">I", (int.from_bytes(data[crc_at : crc_at + 4], "big") + crc_delta) & 0xFFFFFFFF
    )
    images, _ = index_files(make_settings(), {f"{SKU}-1a-1.png": bytes(data)})
    assert verdicts(images) == {f"{SKU}-1a-1.png": (Rejection.CORRUPT.value, detail)}
    with pytest.raises((OSError, SyntaxError)), Image.open(io.BytesIO(bytes(data))) as im:
        im.load()


@pytest.mark.fault_matrix(
    area="Images",
    fault="GIF whose first frame is larger than its logical screen",
    outcome="judged at the size Pillow decodes it (screen grown to the frame), not the screen's",
)
def test_gif_first_frame_larger_than_its_screen_is_judged_at_the_decoded_size() -> None:
    data = gif(300, 300, frame=(12_000, 400))
    with Image.open(io.BytesIO(data)) as im:
        pillow_size = im.size
    assert pillow_size == (12_000, 400)
    assert read_image_header_from_bytes(data) == ImageHeader(ImageFormat.GIF, *pillow_size)


def test_gif_sizes_cached_before_frames_were_read_are_read_again(tmp_path: Path) -> None:
    path = tmp_path / "dimensions.sqlite"
    cache = ProbeCache(path)
    for key, fmt in (("a.gif", "gif"), ("b.png", "png")):
        cache.put_many("bucket", [(key, "etag", ImageProbe(fmt, 300, 300, None))])
    cache.close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version=1")  # a cache written by the screen-only GIF parser
    db.close()
    cache = ProbeCache(path)
    try:
        assert cache.get("bucket", "a.gif", "etag") is None
        assert cache.get("bucket", "b.png", "etag") == ImageProbe("png", 300, 300, None)
    finally:
        cache.close()


def test_a_read_copies_only_the_bytes_it_returns() -> None:
    windows = ByteWindows(total_size=MB4)
    windows.add(0, bytes(MB4))
    tracemalloc.start()
    try:
        for pos in range(0, 10_000, 10):
            windows.read(pos, 10)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024  # copying the held bytes after `pos` would be ~4 MB per read
