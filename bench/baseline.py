"""The spec's design, as written (shared/spec/image-processing-spec.md), to measure bulkimg against.

Data flow of the spec: read the groups, extract the unique Image_SKUs of all variants, fetch each
one's images from S3 in parallel (`fetch_images_parallel`: ThreadPoolExecutor(max_workers=10),
results kept in a per-run `ImageCache`), then per group one `productSet` with its media and one
`productVariantUpdate` per variant that has an image. Per Image_SKU (`fetch_images_for_sku`): list
its folder (`list_objects_v2`, paginated), keep the names that match the pattern, then for each
one `head_object` and a download of the whole file to read its dimensions (Pillow), sort by
variation, and presign a URL for each image kept.

Of the two readings of "parallel", this takes the one most favourable to the baseline: all the
run's Image_SKUs go through one pool of 10, rather than one group at a time. Shopify is not called:
each call is built and recorded (`RecordingShopify`), so the count is the design's own.

Run as `python -m bench.baseline --catalog F --endpoint URL --out result.json`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import math
import re
import sqlite3
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import orjson
from PIL import Image

from bench.s3server import ACCESS_KEY, BUCKET, REGION, SECRET_KEY
from bulkimg.s3.client import RequestCounter

BASE_DIRECTORY = "sorted-media/"
MIN_SIZE = 200
VALID_EXTENSIONS = ("jpg", "jpeg", "png", "gif", "webp")


@dataclass(slots=True)
class ImageData:
    image_sku: str
    variation_number: int
    s3_key: str
    url: str
    width: int
    height: int


@dataclass(slots=True)
class NavItem:
    sku: str
    image_sku: str
    group_id: str
    title: str


class S3Client:
    """Handles all AWS S3 interactions (the spec's class)."""

    def __init__(self, endpoint: str) -> None:
        self.s3_client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        self.counter = RequestCounter()
        self.counter.attach(self.s3_client)
        self.bytes_lock = threading.Lock()
        self.bytes_per_image: list[int] = []

    def construct_s3_path(self, image_sku: str) -> str:
        sku_prefix = image_sku[:6] if len(image_sku) >= 6 else image_sku
        sku_prefix = sku_prefix.ljust(6, "0")
        return f"{BASE_DIRECTORY}{sku_prefix[0:2]}/{sku_prefix[2:4]}/{sku_prefix[4:6]}/"

    def list_images_in_directory(self, s3_path: str) -> list[str]:
        keys: list[str] = []
        paginator = self.s3_client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=BUCKET, Prefix=s3_path):
            keys.extend(o["Key"] for o in page.get("Contents", []))
        return keys

    def get_image_metadata(self, s3_key: str) -> dict[str, Any]:
        """head_object for the metadata, then the file itself for its dimensions."""
        head = self.s3_client.head_object(Bucket=BUCKET, Key=s3_key)
        body = self.s3_client.get_object(Bucket=BUCKET, Key=s3_key)["Body"].read()
        with self.bytes_lock:
            self.bytes_per_image.append(len(body))
        with Image.open(io.BytesIO(body)) as image:
            width, height = image.size
        return {"content_type": head.get("ContentType"), "width": width, "height": height}

    def get_presigned_url(self, s3_key: str, expiration: int = 3600) -> str:
        url: str = self.s3_client.generate_presigned_url(
            "get_object", Params={"Bucket": BUCKET, "Key": s3_key}, ExpiresIn=expiration
        )
        return url


class ImageValidator:
    """Validates and filters images based on rules (the spec's class)."""

    def validate_filename(self, filename: str, image_sku: str) -> bool:
        pattern = rf"^{re.escape(image_sku)}-(\d+)a-(\d+)\.([A-Za-z0-9]+)$"
        return re.match(pattern, filename) is not None and self.is_valid_image_type(filename)

    def extract_variation_number(self, filename: str) -> int | None:
        match = re.match(r"^[^-]+-(\d+)a-\d+\.", filename)
        return int(match.group(1)) if match else None

    def validate_dimensions(self, width: int, height: int) -> bool:
        return width >= MIN_SIZE and height >= MIN_SIZE

    def is_valid_image_type(self, filename: str) -> bool:
        return filename.rsplit(".", 1)[-1].lower() in VALID_EXTENSIONS


class ImageCache:
    """Cache S3 responses within a processing run (the spec's class)."""

    def __init__(self) -> None:
        self.cache: dict[str, list[ImageData]] = {}
        self.hits = 0

    def get(self, image_sku: str) -> list[ImageData] | None:
        found = self.cache.get(image_sku)
        if found is not None:
            self.hits += 1
        return found

    def set(self, image_sku: str, images: list[ImageData]) -> None:
        self.cache[image_sku] = images


@dataclass(slots=True)
class RecordingShopify:
    """Builds each Shopify call of the design and records it instead of sending it."""

    calls: Counter[str] = field(default_factory=Counter)

    def execute(self, mutation: str, variables: dict[str, Any]) -> None:
        orjson.dumps(variables)  # the request body is built, as it would be for sending
        self.calls[mutation] += 1


class ImageHandler:
    """Main orchestrator for image processing (the spec's class)."""

    def __init__(self, endpoint: str) -> None:
        self.s3_client = S3Client(endpoint)
        self.validator = ImageValidator()
        self.cache = ImageCache()
        self.errors: Counter[str] = Counter()

    def collect_image_skus(self, products: list[NavItem]) -> dict[str, list[str]]:
        mapping: dict[str, list[str]] = {}
        for item in products:
            if item.image_sku:
                mapping.setdefault(item.image_sku, []).append(item.sku)
        return mapping

    def fetch_images_for_sku(self, image_sku: str) -> list[ImageData]:
        s3_path = self.s3_client.construct_s3_path(image_sku)
        images: list[ImageData] = []
        for key in self.s3_client.list_images_in_directory(s3_path):
            filename = key.rsplit("/", 1)[-1]
            if not self.validator.validate_filename(filename, image_sku):
                continue
            try:
                meta = self.s3_client.get_image_metadata(key)
            except Exception as exc:  # the spec logs and skips an image it cannot read
                self.errors[type(exc).__name__] += 1
                continue
            if not self.validator.validate_dimensions(meta["width"], meta["height"]):
                continue
            variation = self.validator.extract_variation_number(filename) or 0
            url = self.s3_client.get_presigned_url(key)
            images.append(ImageData(image_sku, variation, key, url, meta["width"], meta["height"]))
        return sorted(images, key=lambda x: x.variation_number)

    def fetch_images_parallel(self, image_skus: list[str]) -> dict[str, list[ImageData]]:
        results: dict[str, list[ImageData]] = {}
        todo = []
        for sku in image_skus:
            cached = self.cache.get(sku)
            if cached is None:
                todo.append(sku)
            else:
                results[sku] = cached
        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as executor:
            futures = {executor.submit(self.fetch_images_for_sku, sku): sku for sku in todo}
            for future in concurrent.futures.as_completed(futures):
                sku = futures[future]
                results[sku] = future.result()
                self.cache.set(sku, results[sku])
        return results


def read_groups(catalog: Path) -> dict[str, list[NavItem]]:
    db = sqlite3.connect(catalog)
    groups: dict[str, list[NavItem]] = {}
    query = (
        "SELECT No_, Image_SKU, Web_Product_Group_ID, Description FROM nav_items"
        " ORDER BY Web_Product_Group_ID, No_"
    )
    for sku, image_sku, group_id, title in db.execute(query):
        groups.setdefault(group_id, []).append(NavItem(sku, image_sku or "", group_id, title))
    db.close()
    return groups


def run(catalog: Path, endpoint: str) -> dict[str, Any]:
    started = time.monotonic()
    handler = ImageHandler(endpoint)
    shopify = RecordingShopify()
    groups = read_groups(catalog)
    unique = sorted({i.image_sku for items in groups.values() for i in items if i.image_sku})
    s3_started = time.monotonic()
    images = handler.fetch_images_parallel(unique)
    s3_seconds = time.monotonic() - s3_started
    accepted = 0
    for group_id, items in groups.items():
        mapping = handler.collect_image_skus(items)
        media = [image for sku in mapping for image in images.get(sku, [])]
        accepted += len(media)
        shopify.execute("productSet", _product_input(group_id, items, media))
        for item in items:
            primary = images.get(item.image_sku) or []
            if primary:
                variables = {"input": {"sku": item.sku, "imageSrc": primary[0].url}}
                shopify.execute("productVariantUpdate", variables)
    wall = time.monotonic() - started
    sizes = sorted(handler.s3_client.bytes_per_image)
    return {
        "wall_seconds": round(wall, 3),
        "s3_seconds": round(s3_seconds, 3),
        "groups": len(groups),
        "variants": sum(len(items) for items in groups.values()),
        "image_skus": len(unique),
        "seconds_per_image_sku": round(wall / len(unique), 6) if unique else 0.0,
        "s3_requests": handler.s3_client.counter.snapshot(),
        "s3_http_attempts": handler.s3_client.counter.attempts,
        "images_downloaded": len(sizes),
        "media_in_product_sets": accepted,
        "bytes_per_image": _summary(sizes),
        "errors": dict(handler.errors),
        "shopify_calls": dict(shopify.calls),
    }


def _product_input(group_id: str, items: list[NavItem], media: list[ImageData]) -> dict[str, Any]:
    return {
        "input": {
            "title": items[0].title,
            "handle": group_id.lower(),
            "productOptions": [{"name": "SKU", "values": [{"name": i.sku} for i in items]}],
            "variants": [
                {"sku": i.sku, "optionValues": [{"optionName": "SKU", "name": i.sku}]}
                for i in items
            ],
            "media": [
                {
                    "originalSource": m.url,
                    "alt": f"{m.image_sku} - Image {m.variation_number}",
                    "mediaContentType": "IMAGE",
                }
                for m in media
            ],
        }
    }


def _summary(values: list[int]) -> dict[str, int]:
    if not values:
        return {"median": 0, "p99": 0, "max": 0}
    p99 = values[min(len(values) - 1, math.ceil(0.99 * len(values)) - 1)]
    return {"median": int(statistics.median(values)), "p99": p99, "max": values[-1]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The spec's per-Image_SKU design (benchmark).")
    parser.add_argument("--catalog", type=Path, required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    result = run(args.catalog, args.endpoint)
    args.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")


if __name__ == "__main__":
    main()
