"""A generated sample catalog with real image bytes: for `bulkimg demo` and the tests.

It exercises every rule of the spec: shared Image_SKUs, several images per SKU, numbers past 9
(10a after 2a), and noise that must be ignored (wrong suffix, another SKU, non-images, too small,
superseded, corrupt, a PNG named .jpg, a JPEG whose size marker sits behind 160 KB of ICC profile).
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw

from bulkimg.s3.keys import folder_for

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CATALOG_COLUMNS = ("No_", "Image_SKU", "Web_Product_Group_ID", "Description")
_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP"}


def image_bytes(
    ext: str, width: int, height: int, label: str = "", *, padding: int = 0, seed: int = 0
) -> bytes:
    """A real image file of the given format and size, with `label` drawn on it.

    `padding` (JPEG only) puts that many bytes of ICC profile before the size marker, as
    cameras and editors do, so a reader must skip segments to find the dimensions.
    """
    rng = random.Random(seed)
    color = (rng.randrange(60, 230), rng.randrange(60, 230), rng.randrange(60, 230))
    image = Image.new("RGB", (width, height), color)
    if label:
        ImageDraw.Draw(image).text((10, 10), label, fill=(20, 20, 20))
    out = io.BytesIO()
    fmt = _FORMATS[ext.lower()]
    if fmt == "JPEG" and padding:
        image.save(
            out, fmt, quality=70, icc_profile=bytes(rng.randrange(256) for _ in range(padding))
        )
    elif fmt == "GIF":
        image.convert("P").save(out, fmt)
    else:
        image.save(out, fmt, **({"quality": 70} if fmt in ("JPEG", "WEBP") else {}))
    return out.getvalue()


@dataclass(slots=True)
class SampleData:
    """Catalog rows and the S3 objects that go with them."""

    rows: list[dict[str, str]] = field(default_factory=list)
    objects: dict[str, bytes] = field(default_factory=dict)

    def write_csv(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=CATALOG_COLUMNS)
            writer.writeheader()
            writer.writerows(self.rows)
        return path

    def upload(self, client: S3Client, bucket: str) -> None:
        for key, body in self.objects.items():
            client.put_object(Bucket=bucket, Key=key, Body=body)

    def add_image(self, image_sku: str, name: str, body: bytes) -> str:
        key = folder_for(image_sku) + name
        self.objects[key] = body
        return key


def demo_data(groups: int = 24, seed: int = 2026) -> SampleData:
    """A few dozen groups of jewelry variants with images and every kind of noise."""
    rng = random.Random(seed)
    data = SampleData()
    sku_number = 800_000
    for g in range(groups):
        group_id = f"{rng.choice(['LGD', 'GID'])}-{101_000 + g * 7}"
        title = f"{rng.choice(['Moissanite', 'Lab Diamond'])} {rng.choice(['Ring', 'Pendant'])}"
        image_skus = [str(820_000 + g * 10 + i) for i in range(rng.choice([1, 1, 2]))]
        for image_sku in image_skus:
            _images_for(data, image_sku, rng)
        for v in range(rng.randint(1, 4)):
            sku_number += 1
            data.rows.append(
                {
                    "No_": str(sku_number),
                    "Image_SKU": image_skus[v % len(image_skus)],
                    "Web_Product_Group_ID": group_id,
                    "Description": f"{title} {g}",
                }
            )
    _add_problem_rows(data, sku_number)
    return data


def _images_for(data: SampleData, image_sku: str, rng: random.Random) -> None:
    count = rng.choice([1, 2, 3, 3, 4])
    for n in range(1, count + 1):
        ext = rng.choice(["jpg", "jpg", "jpeg", "png", "webp", "JPG"])
        side = rng.choice([400, 600, 800])
        body = image_bytes(ext, side, side, f"{image_sku} {n}a", seed=rng.randrange(1 << 30))
        data.add_image(image_sku, f"{image_sku}-{n}a-{rng.randrange(10_000, 99_999)}.{ext}", body)
    if rng.random() < 0.5:  # wrong suffix, to be ignored
        data.add_image(image_sku, f"{image_sku}-1b-11111.jpg", image_bytes("jpg", 300, 300))
    if rng.random() < 0.3:  # not an image type
        data.add_image(image_sku, f"{image_sku}-2a-22222.txt", b"notes")
    if rng.random() < 0.3:  # too small
        data.add_image(image_sku, f"{image_sku}-9a-33333.jpg", image_bytes("jpg", 150, 120))


def _add_problem_rows(data: SampleData, sku_number: int) -> None:
    def row(image_sku: str, group: str, title: str) -> None:
        nonlocal sku_number
        sku_number += 1
        data.rows.append(
            {
                "No_": str(sku_number),
                "Image_SKU": image_sku,
                "Web_Product_Group_ID": group,
                "Description": title,
            }
        )

    # 10a sorts after 2a; a superseded 2a; a JPEG with its size marker ~160 KB in.
    sku = "1102192"
    data.add_image(sku, f"{sku}-1a-100.jpg", image_bytes("jpg", 900, 900, "1a", padding=160_000))
    data.add_image(sku, f"{sku}-2a-200.jpg", image_bytes("jpg", 700, 700, "2a old"))
    data.add_image(sku, f"{sku}-2a-201.png", image_bytes("png", 700, 700, "2a new"))
    data.add_image(sku, f"{sku}-10a-300.gif", image_bytes("gif", 640, 480, "10a"))
    data.add_image("1102193", "1102193-1a-12345.jpg", image_bytes("jpg", 500, 500))  # not ours
    row(sku, "LGD-101792", "Solitaire Ring")
    row(sku, "LGD-101792", "Solitaire Ring")
    row("", "LGD-101792", "Solitaire Ring")  # no Image_SKU
    # Only noise: wrong suffix and a thumbnail.
    data.add_image("498100", "498100-1b-1.jpg", image_bytes("jpg", 400, 400))
    data.add_image("498100", "498100-thumbnail.jpg", image_bytes("jpg", 400, 400))
    row("498100", "GID-100288", "Halo Pendant")
    # No images at all, an invalid Image_SKU.
    row("799057", "LGD-100040", "Tennis Bracelet")
    row("82/77/49", "LGD-100040", "Tennis Bracelet")
    # Everything too small, corrupt or lying about its format.
    data.add_image("555001", "555001-1a-1.jpg", image_bytes("jpg", 199, 640))
    data.add_image("555001", "555001-2a-1.jpg", b"this is not a jpeg at all")
    data.add_image("555001", "555001-3a-1.jpg", image_bytes("png", 640, 640))
    row("555001", "GID-100999", "Stud Earrings")
