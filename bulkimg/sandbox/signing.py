"""Signed, expiring URLs for the sandbox's own storage routes, and hiding signatures in logs."""

from __future__ import annotations

import enum
import hashlib
import hmac
import math
import time
from urllib.parse import urlencode


class Verdict(enum.Enum):
    OK = "ok"
    EXPIRED = "expired"
    BAD_SIGNATURE = "bad signature"


class UrlSigner:
    """HMAC-SHA256 over a path and an expiry time (epoch seconds)."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def signature(self, message: str) -> str:
        return hmac.new(self._key, message.encode(), hashlib.sha256).hexdigest()

    def sign(self, path: str, lifetime: float) -> str:
        """``path`` with ``Expires`` and ``Signature`` query parameters."""
        return self.sign_until(path, time.time() + lifetime)

    def sign_until(self, path: str, expires_at: float) -> str:
        """``path`` signed to stay valid until ``expires_at`` (epoch seconds)."""
        expires = math.ceil(expires_at)
        query = urlencode({"Expires": expires, "Signature": self.signature(f"{path}\n{expires}")})
        return f"{path}?{query}"

    def verify(self, path: str, expires: str | None, signature: str | None) -> Verdict:
        if not expires or not signature or not expires.isdigit():
            return Verdict.BAD_SIGNATURE
        if not hmac.compare_digest(self.signature(f"{path}\n{expires}"), signature):
            return Verdict.BAD_SIGNATURE
        return Verdict.OK if int(expires) >= time.time() else Verdict.EXPIRED
