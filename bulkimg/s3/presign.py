"""Presigned S3 GET URLs signed here (SigV4 query auth), byte for byte as botocore makes them.

botocore builds a request object, runs event hooks and derives the signing key for every URL
(~0.3 ms each: a minute for 200,000 images). A `FastPresigner` freezes the client's credentials
once, derives the signing key once per UTC day, keeps the URL's constant parts, and per URL does
one SHA-256 and one HMAC. It learns everything it does not compute itself — endpoint, addressing
style, the region of the credential scope — from one URL botocore presigns when it is made, and
checks its own URL for that key (and a key full of characters to escape) against botocore's.
When they differ, or the client has no credentials, `presigner` returns botocore's signing
instead, so an unusual configuration is slow, never wrong.

The secret key never leaves this module: not in a repr, an exception or a log line.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from urllib.parse import quote, unquote, urlsplit

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

Presign = Callable[[str], str]
Clock = Callable[[], datetime]

ALGORITHM = "AWS4-HMAC-SHA256"
TIMESTAMP = "%Y%m%dT%H%M%SZ"  # botocore's SIGV4_TIMESTAMP
# Keys the self-check signs: a plain one, and one with every kind of character S3 keys escape.
PROBE_KEYS = ("bulkimg-presign-check", "bulkimg presign/check+%~é?#&=;ü/\u4e2d//x")
SIGV4_MAX_SECONDS = 604_800  # SigV4 refuses a presigned URL valid for more than 7 days
Limit = Literal["setting", "credentials", "sigv4"]
# A presigner with a real clock (the header reads') reads session credentials again this long
# before they expire, so a build longer than the session keeps signing with valid ones.
RENEW_BEFORE_SECONDS = 600
RETRY_RENEW = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class LinkLifetime:
    """How long the URLs signed now stay valid, and what limits it.

    A presigned URL dies with the credentials that signed it (an assumed role's, SSO's, an
    instance role's session), whatever its X-Amz-Expires says; SigV4 caps it at 7 days.
    """

    seconds: int  # X-Amz-Expires of the URLs signed at `signed_at`
    signed_at: datetime
    limited_by: Limit
    credentials_expire_at: datetime | None  # None: long-term keys (no known expiry)

    @property
    def expires_at(self) -> datetime:
        return self.signed_at + timedelta(seconds=self.seconds)

    def describe(self) -> str:
        """`2026-12-03 21:04 UTC (when the S3 credentials expire)`: for reports and pages."""
        why = {
            "setting": "BULKIMG_PRESIGN_SECONDS",
            "credentials": "when the S3 session credentials expire",
            "sigv4": "SigV4's 7-day cap",
        }[self.limited_by]
        return f"{self.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({why})"


def credentials_expiry(client: S3Client, at_least: int = 0) -> datetime | None:
    """When the client's credentials expire; None for credentials without an expiry (long-term
    keys, or none at all).

    Refreshable credentials (assumed roles, SSO, container and instance roles, the environment
    with AWS_CREDENTIAL_EXPIRATION) are refreshed first when botocore would refresh them now, or
    when they expire within `at_least` seconds. When the refresh fails (a source that gives the
    same expired session again), the expiry of the credentials held is returned: a time already
    past says they have expired.
    """
    signer: Any = getattr(client, "_request_signer", None)
    credentials: Any = getattr(signer, "_credentials", None)
    if credentials is None or not hasattr(credentials, "refresh_needed"):
        return None
    advisory = getattr(credentials, "_advisory_refresh_timeout", None)
    # A refresh that fails leaves the expiry of what is held (maybe past).
    with suppress(Exception):
        try:
            if isinstance(advisory, int) and at_least > advisory:
                credentials._advisory_refresh_timeout = at_least  # refresh sooner, this once
            credentials.get_frozen_credentials()  # refreshes credentials about to expire
        finally:
            if isinstance(advisory, int):
                credentials._advisory_refresh_timeout = advisory
    expiry = getattr(credentials, "_expiry_time", None)  # botocore's RefreshableCredentials
    if not isinstance(expiry, datetime):
        return None
    return expiry if expiry.tzinfo is not None else expiry.replace(tzinfo=UTC)


def link_lifetime(
    client: S3Client, wanted: int, signed_at: datetime, at_least: int = 0
) -> LinkLifetime:
    """The lifetime of URLs signed at `signed_at`: `wanted` seconds, capped by SigV4's 7 days and
    by when the client's credentials expire (0 when they already have); credentials expiring
    within `at_least` seconds are refreshed first when they can be."""
    expiry = credentials_expiry(client, at_least)
    seconds = wanted
    limited_by: Limit = "setting"
    if seconds > SIGV4_MAX_SECONDS:
        seconds, limited_by = SIGV4_MAX_SECONDS, "sigv4"
    if expiry is not None:
        left = max(0, int((expiry - signed_at).total_seconds()))
        if left < seconds:
            seconds, limited_by = left, "credentials"
    return LinkLifetime(seconds, signed_at, limited_by, expiry)


def url_expiry(url: str) -> datetime | None:
    """When a SigV4 presigned URL expires by its own X-Amz-Date and X-Amz-Expires (None: not
    one). A URL signed with a session token may die sooner, with its session."""
    query = dict(pair.partition("=")[::2] for pair in url.partition("?")[2].split("&"))
    try:
        signed = datetime.strptime(query["X-Amz-Date"], TIMESTAMP).replace(tzinfo=UTC)
        return signed + timedelta(seconds=int(query["X-Amz-Expires"]))
    except (KeyError, ValueError):
        return None


def botocore_presigner(client: S3Client, bucket: str, expires: int) -> Presign:
    """botocore's own presigning (a request, its event hooks and a signature per URL)."""

    def presign(key: str) -> str:
        return client.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
        )

    return presign


def presigner(client: S3Client, bucket: str, expires: int, clock: Clock | None = None) -> Presign:
    """The fastest presigning of GET URLs for `bucket` that gives botocore's exact URLs.

    Credentials are read (frozen) now: make one per run, not one per URL.
    """
    slow = botocore_presigner(client, bucket, expires)
    fast = FastPresigner.learn(client, slow, expires, clock)
    return fast if fast is not None else slow


class _Credentials(NamedTuple):
    access_key: str
    secret_key: str
    token: str | None

    def __repr__(self) -> str:
        return "_Credentials(...)"  # never the secret or the token


def frozen_credentials(client: S3Client) -> _Credentials | None:
    """The client's credentials as of now (a refreshable set is read once), or None."""
    signer: Any = getattr(client, "_request_signer", None)
    credentials: Any = getattr(signer, "_credentials", None)
    if credentials is None:
        return None
    try:
        frozen = credentials.get_frozen_credentials()
    except Exception:  # a refresh that fails: botocore raises it per URL, as before
        return None
    if not frozen.access_key or not frozen.secret_key:
        return None
    return _Credentials(frozen.access_key, frozen.secret_key, frozen.token or None)


class _Endpoint(NamedTuple):
    """What botocore's URL for a key looks like around the key: learnt from a URL it made."""

    url_prefix: str  # scheme://host[:port]/[bucket/] (everything before the escaped key)
    path_prefix: str  # the path part of url_prefix, as it is signed
    host: str  # the signed host header (no default port)
    region: str
    service: str

    @classmethod
    def of(cls, url: str, key: str) -> _Endpoint | None:
        base, _, query = url.partition("?")
        escaped = _escape(key)
        if not base.endswith(escaped):
            return None
        prefix = base[: -len(escaped)]
        parts = urlsplit(base)
        if not parts.path.endswith(escaped) or parts.port == 0:
            return None
        params = dict(pair.partition("=")[::2] for pair in query.split("&"))
        scope = unquote(params.get("X-Amz-Credential", "")).split("/")
        if len(scope) != 5 or scope[4] != "aws4_request":
            return None
        signed_headers = params.get("X-Amz-SignedHeaders")
        if params.get("X-Amz-Algorithm") != ALGORITHM or signed_headers != "host":
            return None
        path_prefix = parts.path[: -len(escaped)]
        return cls(prefix, path_prefix, _host_header(base), scope[2], scope[3])


class _Day(NamedTuple):
    """What is constant for the URLs of one UTC day."""

    day: str  # YYYYMMDD
    signing_key: bytes
    scope: str  # day/region/service/aws4_request
    query_head: str  # the URL's query up to the timestamp
    query_tail: str  # and after it, before the signature
    canonical_head: str  # the canonical query string up to the timestamp
    canonical_tail: str  # after it, with the canonical headers and payload line

    def __repr__(self) -> str:
        return f"_Day({self.day!r}, ...)"  # the signing key signs anything for a day


class FastPresigner:
    """SigV4 query-string presigned GET URLs for one bucket, with frozen credentials."""

    __slots__ = (
        "_client", "_clock", "_credentials", "_day", "_endpoint", "_expires", "_fallback",
        "_renew_at", "_stamp",
    )  # fmt: skip

    def __init__(
        self,
        endpoint: _Endpoint,
        credentials: _Credentials,
        expires: int,
        fallback: Presign,
        clock: Clock | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._credentials = credentials
        self._expires = expires
        self._fallback = fallback  # for what botocore rejects (an empty key): its error
        self._clock = clock or _utc_now
        self._day: _Day | None = None
        self._stamp: tuple[datetime, str] | None = None  # the clock's last time, formatted
        # Session credentials are read again (refreshed) shortly before they expire.
        self._client: S3Client | None = None
        self._renew_at: datetime | None = None

    def __repr__(self) -> str:  # no credentials in a repr (tracebacks, debuggers)
        return f"FastPresigner({self._endpoint.url_prefix!r}, expires={self._expires})"

    @classmethod
    def learn(
        cls, client: S3Client, slow: Presign, expires: int, clock: Clock | None = None
    ) -> FastPresigner | None:
        """A presigner matching `slow`'s URLs for the probe keys, or None when it does not."""
        credentials = frozen_credentials(client)
        if credentials is None:
            return None
        try:
            samples = [(key, slow(key)) for key in PROBE_KEYS]
        except Exception:  # any failure: botocore signs (and raises) per URL, as before
            return None
        endpoint = _Endpoint.of(samples[0][1], samples[0][0])
        if endpoint is None:
            return None
        fast = cls(endpoint, credentials, expires, slow, clock)
        for key, url in samples:
            stamp = url.partition("X-Amz-Date=")[2][:16]
            if not hmac.compare_digest(fast.sign(key, stamp), url):
                return None
        expiry = credentials_expiry(client)
        if expiry is not None:
            fast._client = client
            fast._renew_at = expiry - timedelta(seconds=RENEW_BEFORE_SECONDS)
        return fast

    def _renew(self, now: datetime) -> None:
        """Read the client's credentials again (botocore refreshes them: they expire soon)."""
        client = self._client
        if client is None:
            return
        expiry = credentials_expiry(client, at_least=RENEW_BEFORE_SECONDS)
        credentials = frozen_credentials(client)
        if credentials is not None and credentials != self._credentials:
            self._credentials, self._day = credentials, None  # a new signing key
        renew_at = expiry - timedelta(seconds=RENEW_BEFORE_SECONDS) if expiry else None
        # Not extended (a session that cannot be refreshed): try again in a minute, not per URL.
        self._renew_at = renew_at if renew_at is None or renew_at > now else now + RETRY_RENEW

    def __call__(self, key: str) -> str:
        if not key:
            return self._fallback(key)
        now, stamp = self._clock(), self._stamp
        renew_at = self._renew_at
        if renew_at is not None and now >= renew_at:
            self._renew(now)
        if stamp is None or stamp[0] != now:  # a frozen clock (a build's) is formatted once
            stamp = self._stamp = (now, now.strftime(TIMESTAMP))
        return self.sign(key, stamp[1])

    def sign(self, key: str, timestamp: str) -> str:
        """The URL of `key` as presigned at `timestamp` (YYYYMMDDTHHMMSSZ, UTC)."""
        day = self._day
        if day is None or day.day != timestamp[:8]:
            day = self._day = self._for_day(timestamp[:8])
        escaped = _escape(key)
        canonical = (
            f"GET\n{self._endpoint.path_prefix}{escaped}\n"
            f"{day.canonical_head}{timestamp}{day.canonical_tail}"
        )
        digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        to_sign = f"{ALGORITHM}\n{timestamp}\n{day.scope}\n{digest}"
        signature = hmac.digest(day.signing_key, to_sign.encode("utf-8"), "sha256").hex()
        return (
            f"{self._endpoint.url_prefix}{escaped}?{day.query_head}{timestamp}"
            f"{day.query_tail}&X-Amz-Signature={signature}"
        )

    def _for_day(self, day: str) -> _Day:
        endpoint, credentials = self._endpoint, self._credentials
        scope = f"{day}/{endpoint.region}/{endpoint.service}/aws4_request"
        key = f"AWS4{credentials.secret_key}".encode()
        for part in (day, endpoint.region, endpoint.service, "aws4_request"):
            key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
        marker = "\0timestamp\0"  # stands for the per-URL timestamp while the parts are built
        params = [
            ("X-Amz-Algorithm", ALGORITHM),
            ("X-Amz-Credential", f"{credentials.access_key}/{scope}"),
            ("X-Amz-Date", marker),
            ("X-Amz-Expires", str(self._expires)),
            ("X-Amz-SignedHeaders", "host"),
        ]
        if credentials.token is not None:
            params.append(("X-Amz-Security-Token", credentials.token))
        encoded = [(_query_escape(k), v if v == marker else _query_escape(v)) for k, v in params]
        query = "&".join(f"{k}={v}" for k, v in encoded)
        canonical = "&".join(f"{k}={v}" for k, v in sorted(encoded))
        canonical += f"\nhost:{endpoint.host}\n\nhost\nUNSIGNED-PAYLOAD"
        query_head, _, query_tail = query.partition(marker)
        canonical_head, _, canonical_tail = canonical.partition(marker)
        return _Day(day, key, scope, query_head, query_tail, canonical_head, canonical_tail)


def _escape(key: str) -> str:
    """An S3 key as botocore puts it in the URL path (UTF-8, `/` and `~` kept)."""
    if _UNESCAPED.fullmatch(key):  # most keys: nothing to escape
        return key
    return quote(key.encode("utf-8"), safe="/~")


# What quote() leaves as is with safe="/~": ASCII letters, digits, "_.-~" and "/".
_UNESCAPED = re.compile(r"[A-Za-z0-9_.\-~/]*")


def _query_escape(value: str) -> str:
    return quote(value.encode("utf-8"), safe="-_.~")


def _host_header(url: str) -> str:
    """The host header botocore signs: lowercase, no default port, IPv6 in brackets."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(parts.scheme)
    if parts.port is not None and parts.port != default:
        host = f"{host}:{parts.port}"
    return host


def _utc_now() -> datetime:
    return datetime.now(UTC)
