"""`bulkimg check`: everything a run needs, checked before it writes anything, and nothing written.

Each check is one line: the shop answers with the token (and is the shop the state file and an
unfinished run belong to), the bucket exists and in which region it is, the credentials list it,
and one presigned URL of an image fetches (a ranged GET of one byte, as Shopify will fetch it).
Temporary S3 credentials (a session with a known expiry) are checked first: when they expire
before the links a submit sends must live (BULKIMG_SUBMIT_LINK_SECONDS), or already have, the
check fails.
A check that cannot pass names the address it tried. Each remote check makes few attempts: a
dead address is reported in seconds, not after a run's retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bulkimg.config import Settings
from bulkimg.errors import BulkimgError
from bulkimg.formats.run import RunStore
from bulkimg.formats.state import StateStore
from bulkimg.s3.client import client_for_bucket, make_s3_client
from bulkimg.s3.linkcheck import check_link
from bulkimg.s3.options import S3Options
from bulkimg.s3.presign import credentials_expiry, presigner
from bulkimg.shopify.client import client_from_settings

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
            shop = client.shop()
    except BulkimgError as exc:
        return [Check("shop", False, f"{settings.shopify_shop}: {_line(exc)}")]
    checks = [Check("shop", True, f"{base}: {shop.name} ({shop.myshopify_domain})")]
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
        checks = _credentials_checks(settings)
    except BulkimgError as exc:
        return [Check("S3 credentials", False, _line(exc))]
    if not all(c.ok for c in checks):
        return checks  # every other S3 check signs with them
    try:
        client, region = client_for_bucket(settings)
    except BulkimgError as exc:
        return [*checks, Check("S3 bucket", False, f"s3://{bucket}: {_line(exc)}")]
    where = f"s3://{bucket} ({settings.aws_endpoint_url_s3 or 'AWS'})"
    said = region.bucket or "the server does not say"
    checks.append(Check("S3 bucket", True, f"{where}: region {said}, signed for {region.signing}"))
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
        link = check_link(S3Options.from_settings(settings), sign(key), key, client.meta.events)
    except BulkimgError as exc:
        return [*checks, Check("presigned URL", False, _line(exc))]
    checks.append(
        Check("presigned URL", True, f"HTTP {link.status} for {key} ({link.seconds:.2f} s)")
    )
    return checks


def _credentials_checks(settings: Settings) -> list[Check]:
    """When temporary credentials (a session with a known expiry) expire, and whether the links
    a submit sends live long enough with them; nothing for long-term keys."""
    need = settings.submit_link_seconds
    expiry = credentials_expiry(make_s3_client(settings), at_least=need)
    if expiry is None:
        return []
    left = (expiry - datetime.now(UTC)).total_seconds()
    when = f"{expiry.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    if left <= 0:
        detail = f"the session credentials expired at {when} ({_duration(-left)} ago): refresh them"
        return [Check("S3 credentials", False, detail)]
    if left < need:
        detail = (
            f"the session credentials expire at {when} (in {_duration(left)}), less than"
            f" BULKIMG_SUBMIT_LINK_SECONDS ({need} s) from now: the links a submit sends would die"
            " before Shopify fetches the images; refresh the credentials (or let the role's"
            " session last longer)"
        )
        return [Check("S3 credentials", False, detail)]
    detail = f"session credentials expire at {when} (in {_duration(left)}); links live until then"
    return [Check("S3 credentials", True, detail)]


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)} s"
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def _line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
