"""Tests for bulkimg.images.header: image size and format from a few byte ranges."""

from __future__ import annotations

import functools
import io
import struct
import zlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from bulkimg.images.header import (
    ByteWindows,
    ImageFormat,
    ImageHeader,
    InvalidImage,
    NeedBytes,
    format_for_extension,
    read_image_header,
    read_image_header_from_bytes,
    sniff_format,
)

SIZES = [(1, 1), (37, 23), (23, 301), (640, 480)]


def _gradient(mode: str, size: tuple[int, int]) -> Image.Image:
    """A non-uniform image, so encoders cannot take shortcuts (e.g. drop an all-opaque alpha)."""
    im = Image.linear_gradient("L").resize(size)
    if mode == "L":
        return im
    rgb = Image.merge("RGB", (im, im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), im))
    if mode == "RGBA":
        rgba = rgb.convert("RGBA")
        rgba.putalpha(im)
        return rgba
    return rgb.convert(mode)


def _save(im: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def _pillow_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def _srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _fetch_loop(
    data: bytes, first: int, min_fetch: int, *, known_size: bool = True
) -> tuple[ImageHeader, int, ByteWindows]:
    """Simulate the caller: ranged GETs until the header parses. Returns (header, rounds, win)."""
    win = ByteWindows(total_size=len(data) if known_size else None)
    win.add(0, data[:first])
    rounds = 0
    while True:
        try:
            return read_image_header(win), rounds, win
        except NeedBytes as need:
            rounds += 1
            assert rounds <= len(data) + 2, "parser does not make progress"
            assert need.length > 0
            assert need.offset + need.length <= len(data), "asked for bytes past the end"
            win.add(need.offset, data[need.offset : need.offset + max(need.length, min_fetch)])


# --- real images made by Pillow -------------------------------------------------------------

ImageMaker = Callable[[tuple[int, int]], bytes]

REAL_IMAGES: dict[str, tuple[ImageFormat, ImageMaker]] = {
    "jpeg-rgb": (ImageFormat.JPEG, lambda s: _save(_gradient("RGB", s), "JPEG", quality=85)),
    "jpeg-gray": (ImageFormat.JPEG, lambda s: _save(_gradient("L", s), "JPEG")),
    "jpeg-cmyk": (ImageFormat.JPEG, lambda s: _save(_gradient("CMYK", s), "JPEG")),
    "jpeg-progressive": (
        ImageFormat.JPEG,
        lambda s: _save(_gradient("RGB", s), "JPEG", progressive=True),
    ),
    "png-rgb": (ImageFormat.PNG, lambda s: _save(_gradient("RGB", s), "PNG")),
    "png-16bit": (ImageFormat.PNG, lambda s: _save(_gradient("L", s).convert("I;16"), "PNG")),
    "png-palette": (ImageFormat.PNG, lambda s: _save(_gradient("RGB", s).convert("P"), "PNG")),
    "png-rgba": (ImageFormat.PNG, lambda s: _save(_gradient("RGBA", s), "PNG")),
    "gif-still": (ImageFormat.GIF, lambda s: _save(_gradient("RGB", s).convert("P"), "GIF")),
    "gif-animated": (
        ImageFormat.GIF,
        lambda s: _save(
            Image.new("RGB", s, (255, 0, 0)),
            "GIF",
            save_all=True,
            append_images=[Image.new("RGB", s, (0, 255, 0)), Image.new("RGB", s, (0, 0, 255))],
            duration=100,
            loop=0,
        ),
    ),
    "webp-lossy": (ImageFormat.WEBP, lambda s: _save(_gradient("RGB", s), "WEBP", quality=80)),
    "webp-lossless": (
        ImageFormat.WEBP,
        lambda s: _save(_gradient("RGB", s), "WEBP", lossless=True),
    ),
    "webp-alpha": (ImageFormat.WEBP, lambda s: _save(_gradient("RGBA", s), "WEBP", quality=80)),
    "webp-icc": (
        ImageFormat.WEBP,
        lambda s: _save(_gradient("RGB", s), "WEBP", lossless=True, icc_profile=_srgb_icc()),
    ),
}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("kind", sorted(REAL_IMAGES))
def test_real_image_size_and_format_match_pillow(kind: str, size: tuple[int, int]) -> None:
    fmt, make = REAL_IMAGES[kind]
    data = make(size)
    header = read_image_header_from_bytes(data)
    assert header == ImageHeader(fmt, *size)
    assert (header.width, header.height) == _pillow_size(data)
    assert sniff_format(data[:12]) is fmt


def test_webp_variants_cover_vp8_vp8l_and_vp8x_chunks() -> None:
    first_chunks = {
        kind: REAL_IMAGES[kind][1]((37, 23))[12:16]
        for kind in ("webp-lossy", "webp-lossless", "webp-alpha", "webp-icc")
    }
    assert first_chunks == {
        "webp-lossy": b"VP8 ",
        "webp-lossless": b"VP8L",
        "webp-alpha": b"VP8X",
        "webp-icc": b"VP8X",
    }


@pytest.mark.parametrize("size", [(16383, 1), (1, 16383)])
def test_webp_lossless_14_bit_dimensions_are_unpacked_correctly(size: tuple[int, int]) -> None:
    data = _save(Image.new("RGB", size), "WEBP", lossless=True)
    assert read_image_header_from_bytes(data) == ImageHeader(ImageFormat.WEBP, *size)


@pytest.mark.parametrize("kind", sorted(REAL_IMAGES))
def test_header_is_read_from_a_short_prefix_of_the_file(kind: str) -> None:
    fmt, make = REAL_IMAGES[kind]
    data = make((640, 480))
    header, rounds, win = _fetch_loop(data, first=12, min_fetch=0)
    assert header == ImageHeader(fmt, 640, 480)
    # Without big metadata segments, a few hundred bytes are enough for any format.
    assert win.bytes_held <= 1024
    assert rounds <= 12


# --- the JPEG whose SOF sits behind 150 KB of metadata ---------------------------------------


@functools.cache
def _jpeg_with_big_metadata(size: tuple[int, int] = (321, 123)) -> tuple[bytes, int]:
    # Blobs without 0xFF bytes, so the only FF C0 in the file is the real SOF marker.
    exif = b"Exif\x00\x00" + bytes(i % 255 for i in range(60_000))  # one APP1 of ~60 KB
    icc = bytes((i * 7) % 255 for i in range(150_000))  # Pillow splits it into three APP2
    data = _save(_gradient("RGB", size), "JPEG", exif=exif, icc_profile=icc)
    sof = data.index(b"\xff\xc0")
    return data, sof


def test_jpeg_sof_past_150kb_is_found_by_skipping_segment_bodies() -> None:
    data, sof = _jpeg_with_big_metadata()
    assert sof > 150_000
    assert data.count(b"\xff\xe2") >= 3  # the ICC profile really is split into APP2 segments
    assert _pillow_size(data) == (321, 123)

    header, rounds, win = _fetch_loop(data, first=64 * 1024, min_fetch=4096)

    assert header == ImageHeader(ImageFormat.JPEG, 321, 123)
    assert rounds <= 5  # one ranged GET per skipped segment, no more
    assert win.bytes_held < 64 * 1024 + rounds * 4096 + 1
    assert win.bytes_held < len(data) // 2  # the segment bodies were never fetched


def test_jpeg_sof_past_150kb_with_exact_fetches_needs_one_round_per_segment() -> None:
    data, _sof = _jpeg_with_big_metadata()
    header, rounds, win = _fetch_loop(data, first=64, min_fetch=0)
    assert header == ImageHeader(ImageFormat.JPEG, 321, 123)
    # APP0, APP1, 3 x APP2, 2 x DQT, SOF: at most one round each.
    assert rounds <= 8
    assert win.bytes_held < 200


def test_jpeg_need_bytes_points_at_the_next_marker_not_into_the_segment_body() -> None:
    data, _sof = _jpeg_with_big_metadata()
    win = ByteWindows(total_size=len(data))
    win.add(0, data[:100_000])
    with pytest.raises(NeedBytes) as exc_info:
        read_image_header(win)
    need = exc_info.value
    assert need.offset > 100_000
    assert data[need.offset : need.offset + 2] == b"\xff\xe2"  # the start of the next APP2
    assert 4 <= need.length <= 16


# --- truncated files ------------------------------------------------------------------------


def test_truncated_jpeg_with_known_size_is_invalid_not_a_request_past_the_end() -> None:
    data, _sof = _jpeg_with_big_metadata()
    cut = data[:100_000]
    with pytest.raises(InvalidImage) as exc_info:
        read_image_header_from_bytes(cut)
    assert exc_info.value.reason == "truncated JPEG: no SOF marker before end of file"
    win = ByteWindows(total_size=len(cut))
    win.add(0, cut)
    with pytest.raises(InvalidImage, match="truncated JPEG"):
        read_image_header(win)


def test_truncated_jpeg_without_known_size_asks_for_more_bytes() -> None:
    data, _sof = _jpeg_with_big_metadata()
    win = ByteWindows()
    win.add(0, data[:100_000])
    with pytest.raises(NeedBytes):
        read_image_header(win)


def test_from_bytes_reraises_need_bytes_when_the_object_is_larger_than_the_buffer() -> None:
    data, _sof = _jpeg_with_big_metadata()
    with pytest.raises(NeedBytes) as exc_info:
        read_image_header_from_bytes(data[:100_000], total_size=len(data))
    assert exc_info.value.offset > 100_000
    assert read_image_header_from_bytes(data, total_size=len(data)).width == 321


@pytest.mark.parametrize(
    "kind",
    [
        "jpeg-cmyk",
        "jpeg-progressive",
        "png-16bit",
        "gif-animated",
        "webp-lossy",
        "webp-lossless",
        "webp-alpha",
        "webp-icc",
    ],
)
def test_every_prefix_is_header_or_truncated_and_never_asks_past_the_end(kind: str) -> None:
    fmt, make = REAL_IMAGES[kind]
    data = make((37, 23))
    whole = ImageHeader(fmt, 37, 23)
    for n in range(min(len(data), 400)):
        prefix = data[:n]
        try:
            assert read_image_header_from_bytes(prefix) == whole
        except InvalidImage as exc:
            assert exc.reason.startswith(("truncated", "not a", "empty"))
        try:
            assert read_image_header_from_bytes(prefix, total_size=len(data)) == whole
        except NeedBytes as need:
            assert need.offset >= n
            assert need.offset + need.length <= len(data)


# --- not an image / not the promised format -------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is a text file that somebody renamed to photo.jpg\n" * 3,
        b"<html><body>404 Not Found</body></html>",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        bytes(range(256)),
        b"x",
    ],
)
def test_non_image_bytes_are_invalid_and_sniff_none(data: bytes) -> None:
    assert sniff_format(data) is None
    with pytest.raises(InvalidImage) as exc_info:
        read_image_header_from_bytes(data)
    assert exc_info.value.reason == "not a JPEG/PNG/GIF/WebP file"


def test_empty_file_is_invalid() -> None:
    with pytest.raises(InvalidImage, match="empty"):
        read_image_header_from_bytes(b"")


def test_non_image_is_recognised_from_a_short_prefix_without_asking_for_more() -> None:
    win = ByteWindows(total_size=10_000)
    win.add(0, b"<ht")
    with pytest.raises(InvalidImage, match="not a JPEG"):
        read_image_header(win)
    win = ByteWindows(total_size=10_000)
    win.add(0, b"\xff\xd8")  # could still be a JPEG
    with pytest.raises(NeedBytes):
        read_image_header(win)


def test_png_named_jpg_is_detected_as_png_by_magic_bytes() -> None:
    data = REAL_IMAGES["png-rgb"][1]((37, 23))
    assert format_for_extension(".jpg") is ImageFormat.JPEG
    assert sniff_format(data) is ImageFormat.PNG
    assert read_image_header_from_bytes(data).format is ImageFormat.PNG


def test_sniff_format_by_magic_bytes() -> None:
    assert sniff_format(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00") is ImageFormat.JPEG
    assert sniff_format(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0d") is ImageFormat.PNG
    assert sniff_format(b"GIF87a\x01\x00\x01\x00\x00\x00") is ImageFormat.GIF
    assert sniff_format(b"GIF89a\x01\x00\x01\x00\x00\x00") is ImageFormat.GIF
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBP") is ImageFormat.WEBP
    assert sniff_format(b"RIFF\x00\x00\x00\x00WAVE") is None
    assert sniff_format(b"GIF90a") is None
    assert sniff_format(b"\xff\xd8") is None
    assert sniff_format(b"") is None


# --- hand-crafted headers -------------------------------------------------------------------


def _png_ihdr(width: int, height: int, *, chunk_type: bytes = b"IHDR") -> bytes:
    body = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(body)) + chunk_type + body
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", zlib.crc32(chunk[4:]))


def _jpeg_segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def _sof(marker: int, width: int, height: int) -> bytes:
    body = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return _jpeg_segment(marker, body)


SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
APP0 = _jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")


def test_huge_declared_png_size_in_a_tiny_file_parses_to_the_declared_numbers() -> None:
    data = _png_ihdr(60_000, 60_000)
    assert len(data) < 1024
    header = read_image_header_from_bytes(data)
    assert header == ImageHeader(ImageFormat.PNG, 60_000, 60_000)
    assert header.pixels == 3_600_000_000


def test_huge_declared_jpeg_and_webp_sizes_parse_without_error() -> None:
    jpeg = SOI + APP0 + _sof(0xC0, 65_535, 65_535) + EOI
    assert read_image_header_from_bytes(jpeg) == ImageHeader(ImageFormat.JPEG, 65_535, 65_535)
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x10\x00\x00\x00"
    vp8x += (60_000 - 1).to_bytes(3, "little") + (40_000 - 1).to_bytes(3, "little")
    webp = b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x
    assert read_image_header_from_bytes(webp) == ImageHeader(ImageFormat.WEBP, 60_000, 40_000)


def test_png_whose_first_chunk_is_not_ihdr_is_invalid() -> None:
    with pytest.raises(InvalidImage) as exc_info:
        read_image_header_from_bytes(_png_ihdr(10, 10, chunk_type=b"CgBI"))
    assert exc_info.value.reason == "PNG IHDR chunk missing"


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_png_ihdr(0, 10), "zero width"),
        (_png_ihdr(10, 0), "zero height"),
        (b"GIF89a\x00\x00\x05\x00\x00\x00\x00", "zero width"),
        (SOI + APP0 + _sof(0xC0, 0, 10) + EOI, "zero width"),
    ],
)
def test_zero_width_or_height_is_invalid(data: bytes, reason: str) -> None:
    with pytest.raises(InvalidImage) as exc_info:
        read_image_header_from_bytes(data)
    assert exc_info.value.reason == reason


def test_jpeg_height_zero_from_dnl_is_invalid() -> None:
    with pytest.raises(InvalidImage, match="DNL"):
        read_image_header_from_bytes(SOI + APP0 + _sof(0xC0, 10, 0) + EOI)


@pytest.mark.parametrize("marker", [0xDA, 0xD9])
def test_jpeg_scan_or_end_before_any_sof_is_invalid(marker: int) -> None:
    seg = _jpeg_segment(marker, b"\x01\x01\x00\x00\x3f\x00") if marker == 0xDA else EOI
    data = SOI + APP0 + seg + _sof(0xC0, 10, 10)
    with pytest.raises(InvalidImage, match="before any SOF"):
        read_image_header_from_bytes(data)


@pytest.mark.parametrize(
    "marker", [0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF]
)
def test_jpeg_every_sof_marker_carries_the_size(marker: int) -> None:
    data = SOI + APP0 + _sof(marker, 123, 45) + EOI
    assert read_image_header_from_bytes(data) == ImageHeader(ImageFormat.JPEG, 123, 45)


@pytest.mark.parametrize("marker", [0xC4, 0xC8, 0xCC])
def test_jpeg_dht_jpg_and_dac_markers_are_not_mistaken_for_sof(marker: int) -> None:
    data = SOI + _sof(marker, 999, 999) + _sof(0xC0, 12, 34) + EOI
    assert read_image_header_from_bytes(data) == ImageHeader(ImageFormat.JPEG, 12, 34)


def test_jpeg_fill_bytes_standalone_markers_and_stray_bytes_are_skipped() -> None:
    data = (
        SOI
        + APP0
        + b"\xff\xff\xff"  # fill bytes before a marker
        + b"\xff\xd0\xff\x01"  # standalone RST0 and TEM: no length field
        + b"\x00\x00\x00"  # stray bytes between segments (libjpeg tolerates them)
        + _jpeg_segment(0xFE, b"a comment")
        + _sof(0xC2, 640, 427)
        + EOI
    )
    assert read_image_header_from_bytes(data) == ImageHeader(ImageFormat.JPEG, 640, 427)


@pytest.mark.parametrize(
    "data",
    [
        SOI + b"\xff\xe0\x00\x01" + b"\x00" * 20,  # segment length below 2
        SOI + b"\xff\xc0\x00\x05\x08\x00\x01\x00\x01" + b"\x00" * 20,  # SOF too short
        SOI + APP0 + SOI + _sof(0xC0, 1, 1),  # second SOI
        SOI + APP0 + b"\x00" * 5000 + _sof(0xC0, 1, 1),  # far too many stray bytes
    ],
)
def test_malformed_jpeg_marker_walk_is_invalid(data: bytes) -> None:
    with pytest.raises(InvalidImage):
        read_image_header_from_bytes(data)


@pytest.mark.parametrize(
    "first_chunk",
    [
        b"VP8 " + struct.pack("<I", 10) + b"\x00\x00\x00\x00\x00\x00\x01\x00\x01\x00",  # no code
        b"VP8 " + struct.pack("<I", 10) + b"\x01\x00\x00\x9d\x01\x2a\x01\x00\x01\x00",  # no key
        b"VP8L" + struct.pack("<I", 5) + b"\x00\x00\x00\x00\x00",  # bad signature
        b"VP8L" + struct.pack("<I", 5) + b"\x2f\x00\x00\x00\xe0",  # bad version
        b"ALPH" + struct.pack("<I", 10) + b"\x00" * 10,  # unknown first chunk
    ],
)
def test_malformed_webp_first_chunk_is_invalid(first_chunk: bytes) -> None:
    data = b"RIFF" + struct.pack("<I", 4 + len(first_chunk)) + b"WEBP" + first_chunk
    with pytest.raises(InvalidImage):
        read_image_header_from_bytes(data)


# --- format_for_extension -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "fmt"),
    [
        (".jpg", ImageFormat.JPEG),
        ("jpg", ImageFormat.JPEG),
        (".JPEG", ImageFormat.JPEG),
        ("jpeg", ImageFormat.JPEG),
        (".Jpg", ImageFormat.JPEG),
        (".png", ImageFormat.PNG),
        ("PNG", ImageFormat.PNG),
        (".gif", ImageFormat.GIF),
        (".WebP", ImageFormat.WEBP),
        ("webp", ImageFormat.WEBP),
        (".tif", None),
        (".heic", None),
        ("", None),
        (".", None),
        ("..jpg", None),
        ("photo.jpg", None),
    ],
)
def test_format_for_extension_is_case_insensitive_with_or_without_dot(
    ext: str, fmt: ImageFormat | None
) -> None:
    assert format_for_extension(ext) is fmt


def test_image_format_values_are_lowercase_strings() -> None:
    assert [str(f) for f in ImageFormat] == ["jpeg", "png", "gif", "webp"]


# --- ByteWindows ----------------------------------------------------------------------------


def test_byte_windows_merges_overlapping_and_adjacent_ranges() -> None:
    data = bytes(range(256)) * 4
    win = ByteWindows(total_size=len(data))
    win.add(100, data[100:200])
    win.add(300, data[300:400])
    assert win.ranges == [(100, 100), (300, 100)]
    assert win.bytes_held == 200
    win.add(150, data[150:250])  # overlaps the first range
    assert win.ranges == [(100, 150), (300, 100)]
    win.add(250, data[250:300])  # touches both: everything becomes one range
    assert win.ranges == [(100, 300)]
    assert win.bytes_held == 300
    win.add(0, data[0:1024])  # covers everything
    assert win.ranges == [(0, 1024)]
    assert win.read(0, 1024) == data


def test_byte_windows_add_inside_an_existing_range_changes_nothing() -> None:
    data = bytes(range(256))
    win = ByteWindows()
    win.add(0, data)
    win.add(10, data[10:20])
    win.add(50, b"")
    assert win.ranges == [(0, 256)]
    assert win.bytes_held == 256


def test_byte_windows_read_returns_exact_bytes_or_need_bytes_for_the_missing_part() -> None:
    data = bytes(range(256))
    win = ByteWindows()
    win.add(10, data[10:20])
    win.add(30, data[30:40])
    assert win.read(12, 5) == data[12:17]
    assert win.read(12, 0) == b""
    with pytest.raises(NeedBytes) as exc_info:
        win.read(15, 20)  # held up to 20, gap 20..30
    assert (exc_info.value.offset, exc_info.value.length) == (20, 15)
    with pytest.raises(NeedBytes) as exc_info:
        win.read(0, 4)
    assert (exc_info.value.offset, exc_info.value.length) == (0, 4)
    assert str(exc_info.value) == "need 4 bytes at offset 0"


def test_byte_windows_read_past_known_end_is_truncated_invalid_image() -> None:
    win = ByteWindows(total_size=50)
    win.add(0, bytes(50))
    assert win.read(40, 10) == bytes(10)
    with pytest.raises(InvalidImage, match="truncated"):
        win.read(45, 10)
    with pytest.raises(ValueError, match="end of the object"):
        win.add(45, bytes(10))


def test_byte_windows_total_size_can_be_learned_later() -> None:
    win = ByteWindows()
    win.add(0, bytes(8))
    with pytest.raises(NeedBytes):
        win.read(4, 8)
    win.total_size = 8
    with pytest.raises(InvalidImage):
        win.read(4, 8)


def test_exceptions_keep_their_attributes_and_pickle() -> None:
    import pickle

    need = pickle.loads(pickle.dumps(NeedBytes(7, 9)))
    assert (need.offset, need.length) == (7, 9)
    bad = pickle.loads(pickle.dumps(InvalidImage("zero width")))
    assert bad.reason == "zero width"
    assert str(bad) == "zero width"


# --- property: arbitrary bytes never break the parser ----------------------------------------

_MAGICS = [
    b"",
    b"\xff\xd8\xff",
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    b"\x89PNG\r\n\x1a\n",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR",
    b"GIF89a",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
    b"RIFF\x00\x00\x00\x00WEBPVP8L",
    b"RIFF\x00\x00\x00\x00WEBPVP8X",
]


@settings(max_examples=400, deadline=None)
@given(
    magic=st.sampled_from(_MAGICS),
    tail=st.binary(max_size=600)
    | st.lists(
        st.sampled_from([b"\xff", b"\x00", b"\xd8", b"\xc0", b"\x00\x08"]), max_size=300
    ).map(b"".join),
    first=st.integers(min_value=0, max_value=64),
)
def test_arbitrary_bytes_give_a_positive_header_or_invalid_image_only(
    magic: bytes, tail: bytes, first: int
) -> None:
    data = magic + tail
    try:
        header: ImageHeader | None = read_image_header_from_bytes(data)
    except InvalidImage:
        header = None
    if header is not None:
        assert header.width > 0
        assert header.height > 0
        assert sniff_format(data) is header.format
    # Fetching the same bytes range by range reaches the same answer, in bounded rounds.
    try:
        ranged: ImageHeader | None = _fetch_loop(data, first=first, min_fetch=0)[0]
    except InvalidImage:
        ranged = None
    assert ranged == header


# --- GIF: the walk to the first frame ----------------------------------------------------------

GIF_SCREEN = b"GIF89a" + struct.pack("<HHBBB", 300, 200, 0, 0, 0)  # no global colour table
GIF_FRAME = b"\x2c" + struct.pack("<HHHHB", 0, 0, 300, 200, 0) + b"\x02\x02\x44\x01\x00;"


def _gif_with(extensions: bytes) -> bytes:
    return GIF_SCREEN + extensions + GIF_FRAME


def _xmp_extension(sub_blocks: int) -> bytes:
    """An XMP application extension of `sub_blocks` full (255-byte) data sub-blocks."""
    return b"\x21\xff\x0bXMP DataXMP" + (b"\xff" + b"x" * 255) * sub_blocks + b"\x00"


class CountingWindows(ByteWindows):
    __slots__ = ("reads",)

    def __init__(self, total_size: int | None = None) -> None:
        super().__init__(total_size)
        self.reads = 0

    def read(self, offset: int, length: int) -> bytes:
        self.reads += 1
        return super().read(offset, length)


def test_gif_with_an_xmp_packet_of_thousands_of_sub_blocks_has_its_size() -> None:
    data = _gif_with(b"\x21\xf9\x04\x00\x00\x00\x00\x00" + _xmp_extension(5_000))
    assert len(data) > 1_000_000
    assert read_image_header_from_bytes(data) == ImageHeader(ImageFormat.GIF, 300, 200)
    assert _pillow_size(data) == (300, 200)


def test_gif_walk_resumes_where_it_stopped_instead_of_starting_again() -> None:
    """Fed one 4 KiB range at a time, each block is read about once, not once per range."""
    data = _gif_with(_xmp_extension(2_000))  # 512 KB: 125 ranges
    win = CountingWindows(total_size=len(data))
    offset, ranges = 0, 0
    while True:
        win.add(offset, data[offset : offset + 4096])
        ranges += 1
        try:
            header = read_image_header(win)
            break
        except NeedBytes as need:
            offset = need.offset
    assert header == ImageHeader(ImageFormat.GIF, 300, 200)
    assert ranges == len(data) // 4096 + 1
    # 2,003 blocks; a walk that restarted on every range read ~125,000 times
    assert win.reads < 2_000 + 3 * ranges


@pytest.mark.parametrize(
    ("extensions", "reason"),
    [
        (b"\x21\xfe\x00" * 5_000, "bad GIF: over 4096 extensions before a frame"),
        (b"\x21\xfe" + b"\x01a" * 70_000 + b"\x00", "bad GIF: over 65536 blocks before a frame"),
    ],
    ids=["empty-extensions", "one-byte-sub-blocks"],
)
def test_gif_walk_over_endless_tiny_blocks_ends_after_a_bounded_number(
    extensions: bytes, reason: str
) -> None:
    data = _gif_with(extensions)
    win = CountingWindows(total_size=len(data))
    win.add(0, data)
    with pytest.raises(InvalidImage) as exc_info:
        read_image_header(win)
    assert exc_info.value.reason == reason
    assert win.reads <= 2 * 65_536 + 10


# --- PNG: what Pillow refuses in the IHDR chunk ------------------------------------------------


def _png_with_ihdr(body: bytes, *, crc_delta: int = 0) -> bytes:
    chunk = b"IHDR" + body
    crc = (zlib.crc32(chunk) + crc_delta) & 0xFFFFFFFF
    idat = b"IDAT" + zlib.compress(b"\x00" * 64)
    rest = struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
    iend = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", crc) + rest + iend
    )


def _ihdr(depth: int = 8, colour: int = 2, filtering: int = 0) -> bytes:
    return struct.pack(">IIBBBBB", 40, 30, depth, colour, 0, filtering, 0)


def _pillow_refuses(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except (OSError, SyntaxError, ValueError):
        return True
    return False


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_png_with_ihdr(_ihdr(), crc_delta=1), "bad PNG: IHDR checksum mismatch"),
        (_png_with_ihdr(_ihdr(depth=3)), "bad PNG: bit depth 3 with colour type 2"),
        (_png_with_ihdr(_ihdr(depth=4, colour=2)), "bad PNG: bit depth 4 with colour type 2"),
        (_png_with_ihdr(_ihdr(depth=16, colour=3)), "bad PNG: bit depth 16 with colour type 3"),
        (_png_with_ihdr(_ihdr(depth=8, colour=1)), "bad PNG: bit depth 8 with colour type 1"),
        (_png_with_ihdr(_ihdr(depth=8, colour=7)), "bad PNG: bit depth 8 with colour type 7"),
        (_png_with_ihdr(_ihdr(filtering=1)), "bad PNG: unknown filter method 1"),
    ],
    ids=["bad-crc", "depth-3", "rgb-4-bit", "palette-16-bit", "colour-1", "colour-7", "filter-1"],
)
def test_png_ihdr_that_pillow_refuses_is_invalid(data: bytes, reason: str) -> None:
    assert _pillow_refuses(data)
    with pytest.raises(InvalidImage) as exc_info:
        read_image_header_from_bytes(data)
    assert exc_info.value.reason == reason


@pytest.mark.parametrize(
    ("depth", "colour"),
    [(d, 0) for d in (1, 2, 4, 8, 16)]
    + [(8, 2), (16, 2), (1, 3), (2, 3), (4, 3), (8, 3), (8, 4), (16, 4), (8, 6), (16, 6)],
)
def test_png_every_valid_depth_and_colour_type_is_accepted(depth: int, colour: int) -> None:
    data = _png_with_ihdr(_ihdr(depth=depth, colour=colour))
    assert read_image_header_from_bytes(data) == ImageHeader(ImageFormat.PNG, 40, 30)
    with Image.open(io.BytesIO(data)) as im:  # Pillow opens it too
        assert im.size == (40, 30)
