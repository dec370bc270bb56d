"""Every knob of the sandbox shop in one frozen dataclass; the defaults follow Shopify."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_ACCESS_TOKEN = "shpat_sandbox"  # noqa: S105 - a sandbox default, not a secret
WEEK = 7 * 24 * 3600.0


def _token_from_environment() -> str:
    return os.environ.get("SHOPIFY_ACCESS_TOKEN") or DEFAULT_ACCESS_TOKEN


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Settings of a :class:`~bulkimg.sandbox.SandboxShop`; tests shorten the timings."""

    access_token: str = field(default_factory=_token_from_environment, repr=False)
    schema_path: Path | None = None
    """Admin schema (introspection JSON or SDL); None: Shopify's full schema when found, else
    the subset SDL shipped in bulkimg/documents."""
    shop_name: str = "bulkimg sandbox"
    shop_domain: str = "bulkimg-sandbox.myshopify.com"

    # Bulk operations
    bulk_concurrency_limit: int = 5
    """Bulk operations (queries and mutations together) running at once per shop."""
    bulk_line_delay: float = 0.0
    """Seconds spent on each JSONL line of a bulk mutation before it runs."""
    shuffle_seed: int | None = None
    """Seed of the line order of bulk mutations and of bulk query output; None: random."""
    bulk_mutation_time_limit: float = 24 * 3600.0
    bulk_query_time_limit: float = 10 * 24 * 3600.0
    result_url_lifetime: float = WEEK
    """``url``/``partialDataUrl`` expire this long after the operation ended (not after the
    query that returned them); a COMPLETED operation past it is EXPIRED."""
    staged_upload_lifetime: float = 3600.0
    staged_upload_max_bytes: int = 100_000_000

    # Media
    media_processing_delay: float = 1.0
    """Seconds from UPLOADED to READY/FAILED (half before the download, half after)."""
    media_fetch_timeout: float = 30.0
    media_max_bytes: int = 20 * 1024 * 1024
    media_max_megapixels: float = 20.0
    media_workers: int = 2
    credentials_expire_at: float | None = None
    """Epoch seconds at which the credentials that signed ``originalSource`` URLs expire (a
    session token): a presigned URL fetched later fails whatever its ``X-Amz-Expires`` says.
    None: only ``X-Amz-Date`` + ``X-Amz-Expires`` count."""

    # Product limits
    max_media_per_product: int = 250
    """Media a product may hold (PRODUCT_MEDIA_LIMIT_EXCEEDED exists, no number is documented:
    250 is the stricter folklore value)."""
    variant_throttle_threshold: int = 50_000
    """Variants in the shop from which the variant creation throttle applies."""
    variant_throttle_per_day: int = 1_000
    """New variants per rolling 24 hours once the threshold is reached."""
    media_reorder_delay: float = 0.5
    """Seconds before a productReorderMedia job applies its moves (its Job stays not done)."""

    # Cost-based throttling of ordinary calls (Standard plan)
    throttle_bucket_size: float = 1000.0
    throttle_restore_rate: float = 100.0

    fault_seed: int = 0
    """Seed of the probability of fault rules."""
