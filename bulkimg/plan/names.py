"""How an image on Shopify is matched back to its S3 object.

Shopify keeps neither the source URL nor our S3 key; it keeps the file name we give
(`FileSetInput.filename`), visible as the last path segment of the image's CDN URL. bulkimg names
each file `<S3 file stem>--<first 8 characters of the S3 ETag>.<ext>`, e.g.
`1102192-1a-100--b006dc28.jpg`, so the name alone says which Image_SKU, which variation and which
version of the S3 object the image is. Shopify may append `_<uuid>` to a name already taken; that
suffix is ignored. A file whose name does not parse is not bulkimg's (a manual upload).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

ETAG_CHARS = 8
_NAME = re.compile(
    # ASCII digits only (not \d): a name with other digits is a merchant's file, never bulkimg's.
    r"(?P<sku>[A-Za-z0-9_-]+?)-(?P<variation>[0-9]+)a-(?P<digits>[0-9]+)"
    r"--(?P<etag>[0-9A-Za-z]{1,8})(?:_[0-9a-fA-F-]{36})?\.(?P<ext>[A-Za-z0-9]+)"
)


@dataclass(frozen=True, slots=True)
class ShopFileName:
    """What a bulkimg file name on Shopify says."""

    image_sku: str
    variation: int
    etag: str  # the ETag's first characters
    s3_filename: str  # the S3 object's file name


def shopify_filename(s3_key: str, etag: str) -> str:
    """The file name bulkimg gives an S3 object on Shopify."""
    name = s3_key.rpartition("/")[2]
    if name in ("", ".", ".."):  # a key pathlib reads differently: let it say
        path = PurePosixPath(s3_key)
        return f"{path.stem}--{etag[:ETAG_CHARS]}{path.suffix}"
    dot = name.rfind(".")  # pathlib's stem and suffix, without a path object per image
    stem, suffix = (name[:dot], name[dot:]) if 0 < dot < len(name) - 1 else (name, "")
    return f"{stem}--{etag[:ETAG_CHARS]}{suffix}"


def parse_shopify_filename(name: str) -> ShopFileName | None:
    match = _NAME.fullmatch(name)
    if match is None:
        return None
    s3_name = f"{match['sku']}-{match['variation']}a-{match['digits']}.{match['ext']}"
    return ShopFileName(match["sku"], int(match["variation"]), match["etag"], s3_name)


def filename_of_url(url: str | None) -> str:
    """The file name in a CDN URL (no query string); "" for no URL."""
    return PurePosixPath(unquote(urlsplit(url).path)).name if url else ""
