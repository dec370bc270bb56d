"""`bulkimg check`: everything a run needs, checked before it writes anything, and nothing written.

Each check is one line: the shop answers with the token (and is the shop the state file and an
unfinished run belong to), the bucket exists and in which region it is, the credentials list it,
and one presigned URL of an image fetches (a ranged GET of one byte, as Shopify will fetch it).
A check that cannot pass names the address it tried. Each remote check makes few attempts: a
dead address is reported in seconds, not after a run's retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bulkimg.config import Settings
from bulkimg.errors import BulkimgError
from bulkimg.linkcheck import check_link
from bulkimg.presign import presigner
from bulkimg.runstate import RunStore
from bulkimg.s3client import client_for_bucket
from bulkimg.shopify_client import client_from_settings
from bulkimg.statestore import StateStore

IMAGES_PREFIX = "sorted-media/"
QUICK_ATTEMPTS = 2  # a dead address is reported in seconds


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in order; a failed one does not stop the others that do not need it."""
    checks = _shop_checks(settings)
    checks.extend(_s3_checks(settings))
    return checks


def _shop_checks(settings: Settings) -> list[Check]:
    quick = settings.model_copy(
        update={"shopify_max_attempts": QUICK_ATTEMPTS, "shopify_timeout": 10.0}
    )
    try:
        with client_from_settings(quick) as client:
            base = client.endpoint.base_url
            shop = client.execute("shop")["shop"]
    except BulkimgError as exc:
        return [Check("shop", False, f"{settings.shopify_shop}: {_line(exc)}")]
    checks = [Check("shop", True, f"{base}: {shop['name']} ({shop['myshopifyDomain']})")]
    if settings.state_file.is_file():
        try:
            StateStore(settings.state_file, base).close()
            checks.append(Check("state file", True, f"{settings.state_file} is this shop's"))
        except BulkimgError as exc:
            checks.append(Check("state file", False, _line(exc)))
    store = RunStore(settings.output_dir)
    if store.exists():
        try:
            state = store.load()
        except BulkimgError as exc:
            checks.append(Check("run.json", False, _line(exc)))
        else:
            mine = state.shop == base
            detail = f"{store.path}: run {state.run_id} on {state.shop}" + (
                "" if state.completed_at else " (unfinished)"
            )
            checks.append(Check("run.json", mine or state.completed_at is not None, detail))
    return checks


def _s3_checks(settings: Settings) -> list[Check]:
    bucket = settings.aws_s3_bucket
    if not bucket:
        return [Check("S3 bucket", False, "AWS_S3_BUCKET is not set")]
    try:
        client, region = client_for_bucket(settings)
    except BulkimgError as exc:
        return [Check("S3 bucket", False, f"s3://{bucket}: {_line(exc)}")]
    where = f"s3://{bucket} ({settings.aws_endpoint_url_s3 or 'AWS'})"
    said = region.bucket or "the server does not say"
    checks = [Check("S3 bucket", True, f"{where}: region {said}, signed for {region.signing}")]
    try:
        listed: Any = client.list_objects_v2(Bucket=bucket, Prefix=IMAGES_PREFIX, MaxKeys=1)
    except Exception as exc:
        return [*checks, Check("S3 listing", False, f"{where}: {type(exc).__name__}: {exc}")]
    contents = listed.get("Contents") or []
    if not contents:
        return [*checks, Check("S3 listing", False, f"{where}: nothing under {IMAGES_PREFIX}")]
    key = str(contents[0]["Key"])
    checks.append(Check("S3 listing", True, f"{where}: {IMAGES_PREFIX}… lists ({key})"))
    try:
        sign = presigner(client, bucket, min(settings.presign_seconds, 300))
        link = check_link(settings, sign(key), key, client.meta.events)
    except BulkimgError as exc:
        return [*checks, Check("presigned URL", False, _line(exc))]
    checks.append(
        Check("presigned URL", True, f"HTTP {link.status} for {key} ({link.seconds:.2f} s)")
    )
    return checks


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
