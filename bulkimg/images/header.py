"""Learn an image's format and pixel size from a few byte ranges of a remote object.

Pure parsing, no I/O. The caller fetches byte ranges of an S3 object (ranged GET), stores them in a
:class:`ByteWindows` and calls :func:`read_image_header`. When the parser needs bytes that are not
held yet it raises :class:`NeedBytes` naming the exact range; the caller fetches it (or a larger
range around it), adds it and calls again. Parsing restarts from the beginning each time, which is
cheap for JPEG: it only ever looks at a few dozen bytes per segment and skips segment bodies
(EXIF, ICC profiles, thumbnails) by jumping straight to the next marker. A GIF's walk over its
extension blocks resumes where the last call stopped (the cursor is kept in the ByteWindows), so
a walk over many blocks costs each block once, however many ranges it takes.

Set ``ByteWindows.total_size`` (e.g. from the ``Content-Range`` of the first response) so that a
file that ends too early is reported as :class:`InvalidImage` ("truncated ...") instead of
asking for bytes past its end.

Formats: JPEG (ITU T.81 marker segments), PNG (IHDR), GIF (screen and first frame) and WebP
(RIFF with a ``VP8 ``, ``VP8L`` or ``VP8X`` first chunk). Pixel data is never decoded, so a
declared 60000x60000 image in a 1 KB file parses fine; rejecting it is the caller's job.
"""

from __future__ import annotations

import bisect
import enum
import zlib
from dataclasses import dataclass

__all__ = [
    "ByteWindows",
    "ImageFormat",
    "ImageHeader",
    "InvalidImage",
    "NeedBytes",
    "format_for_extension",
    "read_image_header",
    "read_image_header_from_bytes",
    "sniff_format",
]


class ImageFormat(enum.StrEnum):
    JPEG = "jpeg"
    PNG = "png"
    GIF = "gif"
    WEBP = "webp"


_FORMAT_NAMES: dict[ImageFormat, str] = {
    ImageFormat.JPEG: "JPEG",
    ImageFormat.PNG: "PNG",
    ImageFormat.GIF: "GIF",
    ImageFormat.WEBP: "WebP",
}

_EXTENSIONS: dict[str, ImageFormat] = {
    "jpg": ImageFormat.JPEG,
    "jpeg": ImageFormat.JPEG,
    "jpe": ImageFormat.JPEG,
    "jfif": ImageFormat.JPEG,
    "png": ImageFormat.PNG,
    "gif": ImageFormat.GIF,
    "webp": ImageFormat.WEBP,
}


def format_for_extension(ext: str) -> ImageFormat | None:
    """The format a file extension promises (``".JPG"``, ``"jpeg"``, ``"png"`` ...), or None."""
    key = ext.strip().lower()
    if key.startswith("."):
        key = key[1:]
    return _EXTENSIONS.get(key)


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What the header says: the real format and the pixel size (both > 0)."""

    format: ImageFormat
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


class NeedBytes(Exception):  # noqa: N818 - the name is the public API
    """The parser needs `length` bytes starting at absolute `offset` that it does not have."""

    def __init__(self, offset: int, length: int) -> None:
        super().__init__(offset, length)
        self.offset = offset
        self.length = length

    def __str__(self) -> str:
        return f"need {self.length} bytes at offset {self.offset}"


class InvalidImage(Exception):  # noqa: N818 - the name is the public API
    """The bytes are not a parseable image header."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


class _Truncated(InvalidImage):
    """A read passed the known end of the object (re-raised with a format-specific reason)."""


class ByteWindows:
    """Sparse view of a remote object's bytes: the ranges fetched so far.

    Ranges are kept sorted, disjoint and non-adjacent: overlapping or touching ranges are merged
    on :meth:`add` (where they overlap, the newly added bytes win).
    """

    __slots__ = ("_chunks", "_gif_walk", "_starts", "total_size")

    def __init__(self, total_size: int | None = None) -> None:
        if total_size is not None and total_size < 0:
            raise ValueError(f"total_size must be >= 0, got {total_size}")
        self.total_size: int | None = total_size
        self._starts: list[int] = []
        self._chunks: list[bytes] = []
        self._gif_walk: _GifWalk | None = None  # where the last GIF walk stopped

    def add(self, offset: int, data: bytes) -> None:
        """Store the bytes fetched at absolute `offset`."""
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        if not data:
            return
        end = offset + len(data)
        if self.total_size is not None and end > self.total_size:
            raise ValueError(
                f"bytes {offset}..{end} pass the end of the object ({self.total_size} bytes)"
            )
        # First range that ends at or after `offset` (touching counts), up to the last range that
        # starts at or before `end`: all of them merge with the new one.
        lo = bisect.bisect_right(self._starts, offset)
        if lo > 0 and self._starts[lo - 1] + len(self._chunks[lo - 1]) >= offset:
            lo -= 1
        hi = bisect.bisect_right(self._starts, end)
        if lo == hi:
            self._starts.insert(lo, offset)
            self._chunks.insert(lo, bytes(data))
            return
        start = min(offset, self._starts[lo])
        stop = max(end, self._starts[hi - 1] + len(self._chunks[hi - 1]))
        merged = bytearray(stop - start)
        for s, chunk in zip(self._starts[lo:hi], self._chunks[lo:hi], strict=True):
            merged[s - start : s - start + len(chunk)] = chunk
        merged[offset - start : end - start] = data
        self._starts[lo:hi] = [start]
        self._chunks[lo:hi] = [bytes(merged)]

    def read(self, offset: int, length: int) -> bytes:
        """Exactly `length` bytes at `offset`.

        Raises :class:`NeedBytes` for the part not held yet (starting where the held bytes at
        `offset` stop), or :class:`InvalidImage` ("truncated ...") when `total_size` is known
        and the range passes the end of the object.
        """
        if offset < 0 or length < 0:
            raise ValueError(f"bad range: offset={offset} length={length}")
        end = offset + length
        if self.total_size is not None and end > self.total_size:
            raise _Truncated(
                f"truncated file: bytes {offset}..{end} needed, the object has {self.total_size}"
            )
        if length == 0:
            return b""
        # Slice only what is asked: copying the rest of a multi-MB range on every read made a
        # walk over many small JPEG segments quadratic in the bytes held.
        i = bisect.bisect_right(self._starts, offset) - 1
        held = 0
        if i >= 0:
            rel = offset - self._starts[i]
            chunk = self._chunks[i]
            if rel + length <= len(chunk):
                return chunk[rel : rel + length]
            held = max(len(chunk) - rel, 0)
        raise NeedBytes(offset + held, length - held)

    def _held_from(self, offset: int) -> bytes:
        """The contiguous bytes held from `offset` on (empty if `offset` is not held)."""
        i = bisect.bisect_right(self._starts, offset) - 1
        if i < 0:
            return b""
        rel = offset - self._starts[i]
        chunk = self._chunks[i]
        return chunk[rel:] if rel < len(chunk) else b""

    @property
    def bytes_held(self) -> int:
        """Total distinct bytes held."""
        return sum(len(c) for c in self._chunks)

    @property
    def ranges(self) -> list[tuple[int, int]]:
        """The held ranges as sorted, disjoint ``(offset, length)`` pairs."""
        return [(s, len(c)) for s, c in zip(self._starts, self._chunks, strict=True)]


# --- sniffing ---------------------------------------------------------------------------------

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_GIF_MAGICS = (b"GIF87a", b"GIF89a")
_SNIFF_LEN = 12  # enough for every magic (RIFF....WEBP is the longest)
_NOT_AN_IMAGE = "not a JPEG/PNG/GIF/WebP file"


def sniff_format(head: bytes) -> ImageFormat | None:
    """The format named by the magic bytes at the start of a file (give 12 bytes or more)."""
    if head.startswith(_JPEG_MAGIC):
        return ImageFormat.JPEG
    if head.startswith(_PNG_MAGIC):
        return ImageFormat.PNG
    if head.startswith(_GIF_MAGICS):
        return ImageFormat.GIF
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ImageFormat.WEBP
    return None


def _could_start_a_magic(prefix: bytes) -> bool:
    """True if `prefix` (shorter than the sniff length) may still grow into a known magic."""
    n = len(prefix)
    candidates = (_JPEG_MAGIC, _PNG_MAGIC, *_GIF_MAGICS)
    if any(m[:n] == prefix[: len(m)] for m in candidates):
        return True
    return prefix[:4] == b"RIFF"[:n] and (n <= 8 or prefix[8:12] == b"WEBP"[: n - 8])


# --- parsers ----------------------------------------------------------------------------------


def _be16(b: bytes, i: int) -> int:
    return int.from_bytes(b[i : i + 2], "big")


def _le16(b: bytes, i: int) -> int:
    return int.from_bytes(b[i : i + 2], "little")


def _header(fmt: ImageFormat, width: int, height: int) -> ImageHeader:
    if width <= 0:
        raise InvalidImage("zero width")
    if height <= 0:
        raise InvalidImage("zero height")
    return ImageHeader(fmt, width, height)


# Start-of-frame markers (the ones that carry the frame size): C0-C3, C5-C7, C9-CB, CD-CF.
# C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
_SOF_MARKERS = frozenset({*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC})
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM, RST0-7: no length field
_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
# A SOF segment is marker(2) + length(2) + precision(1) + height(2) + width(2) + components(1),
# and one must start at or after every position the walk visits, so asking for this many bytes
# at each marker never asks past the end of a valid file, and gets a whole SOF in one go.
_JPEG_PEEK = 10
# Bytes that are neither a marker nor fill between segments are tolerated, as libjpeg does
# ("extraneous bytes before marker"), but only this many in all, fill bytes included.
_JPEG_MAX_JUNK = 4096
# Real files have a few dozen segments before the frame (an ICC profile splits into at most 255
# APP2). The walk restarts on every new range, so a file of thousands of tiny segments must end
# here rather than cost minutes of CPU.
_JPEG_MAX_SEGMENTS = 1024


def _parse_jpeg(data: ByteWindows) -> ImageHeader:
    pos = 2  # after SOI (FF D8)
    junk = segments = 0
    while True:  # every pass moves `pos` forward, so reads end at total_size or in NeedBytes
        b = data.read(pos, _JPEG_PEEK)
        if b[0] != 0xFF or b[1] == 0x00:  # not a marker (FF 00 is a stuffed byte)
            next_ff = b.find(0xFF, 1)
            step = 2 if b[0] == 0xFF else (next_ff if next_ff > 0 else len(b))
            junk += step
            if junk > _JPEG_MAX_JUNK:
                raise InvalidImage(f"bad JPEG: no marker found near offset {pos}")
            pos += step
            continue
        if b[1] == 0xFF:  # fill bytes: move to the last 0xFF before the marker code
            step = max(len(b) - len(b.lstrip(b"\xff")) - 1, 1)
            junk += step
            if junk > _JPEG_MAX_JUNK:
                raise InvalidImage(f"bad JPEG: no marker found near offset {pos}")
            pos += step
            continue
        segments += 1
        if segments > _JPEG_MAX_SEGMENTS:
            raise InvalidImage(f"bad JPEG: over {_JPEG_MAX_SEGMENTS} segments before the frame")
        marker = b[1]
        if marker in _STANDALONE_MARKERS:
            pos += 2
            continue
        if marker == _SOS:
            raise InvalidImage("bad JPEG: scan data (SOS) before any SOF marker")
        if marker == _EOI:
            raise InvalidImage("bad JPEG: end of image (EOI) before any SOF marker")
        if marker == _SOI:
            raise InvalidImage(f"bad JPEG: second SOI marker at offset {pos}")
        seg_len = _be16(b, 2)  # includes the two length bytes themselves
        if seg_len < 2:
            raise InvalidImage(f"bad JPEG: segment length {seg_len} at offset {pos}")
        if marker in _SOF_MARKERS:
            if seg_len < 8:
                raise InvalidImage(f"bad JPEG: SOF segment of {seg_len} bytes")
            height, width = _be16(b, 5), _be16(b, 7)
            if height == 0:
                raise InvalidImage("JPEG height 0 (set by a DNL marker) is not supported")
            return _header(ImageFormat.JPEG, width, height)
        pos += 2 + seg_len  # skip the body: the next marker is all we need


_PNG_MAX_DIM = 2**31 - 1
# Bit depths each colour type allows (PNG spec 11.2.2); Pillow refuses any other pair.
_PNG_DEPTHS: dict[int, frozenset[int]] = {
    0: frozenset({1, 2, 4, 8, 16}),  # greyscale
    2: frozenset({8, 16}),  # truecolour
    3: frozenset({1, 2, 4, 8}),  # indexed
    4: frozenset({8, 16}),  # greyscale with alpha
    6: frozenset({8, 16}),  # truecolour with alpha
}


def _parse_png(data: ByteWindows) -> ImageHeader:
    # signature(8), then the first chunk: length(4) type(4) data(13) crc(4), the data being
    # width(4) height(4) bit depth(1) colour type(1) compression(1) filter(1) interlace(1)
    chunk = data.read(8, 8)
    if chunk[4:8] != b"IHDR":
        raise InvalidImage("PNG IHDR chunk missing")
    if int.from_bytes(chunk[0:4], "big") != 13:
        raise InvalidImage("bad PNG: IHDR chunk length is not 13")
    ihdr = data.read(12, 21)  # type, data and CRC
    if zlib.crc32(ihdr[:17]) != int.from_bytes(ihdr[17:21], "big"):
        raise InvalidImage("bad PNG: IHDR checksum mismatch")
    width = int.from_bytes(ihdr[4:8], "big")
    height = int.from_bytes(ihdr[8:12], "big")
    if width > _PNG_MAX_DIM or height > _PNG_MAX_DIM:
        raise InvalidImage("bad PNG: width or height over 2^31-1")
    depth, colour, _, filtering = ihdr[12:16]
    if depth not in _PNG_DEPTHS.get(colour, ()):
        raise InvalidImage(f"bad PNG: bit depth {depth} with colour type {colour}")
    if filtering != 0:
        raise InvalidImage(f"bad PNG: unknown filter method {filtering}")
    return _header(ImageFormat.PNG, width, height)


# The walk to a GIF's first frame steps over extension blocks, each a chain of data sub-blocks
# (255 bytes each at most). Real files have a handful of extensions (graphic control, NETSCAPE
# loop, comment, XMP); an XMP packet may run to thousands of sub-blocks. Every extension and
# every sub-block is a step of the walk, so a file of empty extensions (3 bytes each) or of tiny
# sub-blocks ends here after a bounded walk, while a few MB of metadata in full sub-blocks stay
# within it (the caller's byte budget ends those first).
_GIF_MAX_EXTENSIONS = 4096
_GIF_MAX_STEPS = 65_536


@dataclass(slots=True)
class _GifWalk:
    """Where a GIF walk stands: the next block at `pos` (a sub-block when `in_extension`)."""

    screen: ImageHeader
    pos: int
    in_extension: bool = False
    extensions: int = 0
    steps: int = 0


def _parse_gif(data: ByteWindows) -> ImageHeader:
    """The canvas: the logical screen, grown to hold the first frame as decoders (Pillow) do.

    A 300x300 screen around a 12000x12000 first frame decodes as 12000x12000, so the first
    image descriptor is read too. Later frames are not: reaching them means reading the file.
    The walk resumes where the last call for the same bytes stopped (it raised NeedBytes).
    """
    walk = data._gif_walk
    if walk is None:
        # "GIF8?a", then the logical screen descriptor: width(2) height(2) flags(1) bg(1) aspect(1)
        b = data.read(6, 7)
        screen = _header(ImageFormat.GIF, _le16(b, 0), _le16(b, 2))  # a zero side is invalid
        colour_table = 3 << ((b[4] & 0x07) + 1) if b[4] & 0x80 else 0
        walk = data._gif_walk = _GifWalk(screen, 13 + colour_table)
    # `walk` changes only after each read succeeded: a NeedBytes leaves it at the block to read
    while True:
        if walk.in_extension:  # a data sub-block: its size, then that many bytes; 0 ends it
            size = data.read(walk.pos, 1)[0]
            walk.pos += 1 + size
            walk.in_extension = size != 0
            if size == 0:
                continue
        else:
            introducer = data.read(walk.pos, 1)[0]
            if introducer == 0x2C:  # image descriptor: left(2) top(2) width(2) height(2)
                d = data.read(walk.pos + 1, 8)
                right, bottom = _le16(d, 0) + _le16(d, 4), _le16(d, 2) + _le16(d, 6)
                width, height = max(walk.screen.width, right), max(walk.screen.height, bottom)
                return ImageHeader(ImageFormat.GIF, width, height)
            if introducer == 0x3B:  # trailer: no frame at all
                raise InvalidImage("bad GIF: no image in the file")
            if introducer != 0x21:
                raise InvalidImage(
                    f"bad GIF: unknown block 0x{introducer:02x} at offset {walk.pos}"
                )
            walk.extensions += 1
            if walk.extensions > _GIF_MAX_EXTENSIONS:
                raise InvalidImage(f"bad GIF: over {_GIF_MAX_EXTENSIONS} extensions before a frame")
            walk.pos += 2  # extension introducer and label, then data sub-blocks
            walk.in_extension = True
        walk.steps += 1
        if walk.steps > _GIF_MAX_STEPS:
            raise InvalidImage(f"bad GIF: over {_GIF_MAX_STEPS} blocks before a frame")


def _parse_webp(data: ByteWindows) -> ImageHeader:
    # "RIFF" size(4) "WEBP", then the first chunk: fourcc(4) size(4) data...
    fourcc_size = data.read(12, 8)
    fourcc = fourcc_size[:4]
    chunk_size = int.from_bytes(fourcc_size[4:8], "little")
    if fourcc == b"VP8 ":
        if chunk_size < 10:
            raise InvalidImage("bad WebP: VP8 chunk too short")
        b = data.read(20, 10)
        # frame tag(3): bit 0 of the first byte is 0 for a key frame; then start code 9D 01 2A
        if b[0] & 1:
            raise InvalidImage("bad WebP: VP8 data does not start with a key frame")
        if b[3:6] != b"\x9d\x01\x2a":
            raise InvalidImage("bad WebP: VP8 start code missing")
        return _header(ImageFormat.WEBP, _le16(b, 6) & 0x3FFF, _le16(b, 8) & 0x3FFF)
    if fourcc == b"VP8L":
        if chunk_size < 5:
            raise InvalidImage("bad WebP: VP8L chunk too short")
        b = data.read(20, 5)
        if b[0] != 0x2F:
            raise InvalidImage("bad WebP: VP8L signature missing")
        bits = int.from_bytes(b[1:5], "little")
        if bits >> 29:
            raise InvalidImage("bad WebP: unknown VP8L version")
        return _header(ImageFormat.WEBP, (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if fourcc == b"VP8X":
        if chunk_size < 10:
            raise InvalidImage("bad WebP: VP8X chunk too short")
        b = data.read(20, 10)  # flags(1) reserved(3) canvas width-1 (3) canvas height-1 (3)
        width = int.from_bytes(b[4:7], "little") + 1
        height = int.from_bytes(b[7:10], "little") + 1
        return _header(ImageFormat.WEBP, width, height)
    raise InvalidImage(f"bad WebP: unknown first chunk {fourcc!r}")


_PARSERS = {
    ImageFormat.JPEG: _parse_jpeg,
    ImageFormat.PNG: _parse_png,
    ImageFormat.GIF: _parse_gif,
    ImageFormat.WEBP: _parse_webp,
}

_TRUNCATED_REASONS: dict[ImageFormat, str] = {
    ImageFormat.JPEG: "truncated JPEG: no SOF marker before end of file",
    ImageFormat.PNG: "truncated PNG: file ends inside the IHDR chunk",
    ImageFormat.GIF: "truncated GIF: file ends before the first frame",
    ImageFormat.WEBP: "truncated WebP: file ends inside the first chunk",
}


def read_image_header(data: ByteWindows) -> ImageHeader:
    """Sniff the format from the magic bytes, then parse width and height.

    Raises :class:`NeedBytes` when it needs bytes not held yet, :class:`InvalidImage` when the
    bytes cannot be an image of a supported format.
    """
    total = data.total_size
    if total == 0:
        raise InvalidImage("empty file")
    sniff_len = _SNIFF_LEN if total is None else min(_SNIFF_LEN, total)
    try:
        head = data.read(0, sniff_len)
    except NeedBytes:
        prefix = data._held_from(0)
        if prefix and not _could_start_a_magic(prefix):
            raise InvalidImage(_NOT_AN_IMAGE) from None
        raise
    fmt = sniff_format(head)
    if fmt is None:
        raise InvalidImage(_NOT_AN_IMAGE)
    try:
        return _PARSERS[fmt](data)
    except _Truncated as exc:
        raise InvalidImage(_TRUNCATED_REASONS[fmt]) from exc


def read_image_header_from_bytes(buf: bytes, total_size: int | None = None) -> ImageHeader:
    """:func:`read_image_header` on `buf` held at offset 0.

    `buf` is the whole file unless `total_size` says the object is larger: then a
    :class:`NeedBytes` for the rest is raised as is. Otherwise running out of bytes is an
    :class:`InvalidImage` ("truncated ...").
    """
    if total_size is not None and total_size < len(buf):
        raise ValueError(f"total_size {total_size} is smaller than the buffer ({len(buf)} bytes)")
    windows = ByteWindows(len(buf) if total_size is None else total_size)
    windows.add(0, buf)
    return read_image_header(windows)
