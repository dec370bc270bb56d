"""The exceptions bulkimg raises, so a caller can catch exactly the family it cares about.
Every class bulkimg defines is drawn here, with the module that defines it:

    BulkimgError
    ├── UserError                 the user can fix it; the CLI prints one line and exits 2
    │   ├── ConfigError           a missing or invalid setting
    │   │   ├── RunLockedError            another writer holds the lock (run/lock.py)
    │   │   ├── ShopifyAuthError          401/403: token or scope (shopify/client.py; a
    │   │   │                             ShopifyError too)
    │   │   └── ShopifyUnreachableError   nothing listens at SHOPIFY_SHOP (shopify/client.py; a
    │   │                                 ShopifyNetworkError too)
    │   ├── CatalogError          the catalog cannot be read (bad URL, missing table or column)
    │   └── InputFileError        a file given on the command line is missing or malformed
    └── RemoteError               S3 or Shopify failed in a way retrying did not fix; exit 1
        ├── S3Error               an S3 request failed (access denied, missing bucket, network)
        │   └── S3GetError        one GET by presigned URL: S3's error code (s3/get.py)
        └── ShopifyError          a Shopify request failed (shopify/client.py)
            ├── ShopifyNetworkError       the request did not complete (retried)
            ├── ShopifyServerError        5xx, INTERNAL_SERVER_ERROR (retried)
            ├── ShopifyThrottledError     429 or THROTTLED (retried after the wait it names)
            ├── ShopifyGraphQLError       top-level GraphQL errors
            ├── BulkOperationFailedError  a bulk operation failed, was cancelled or refused; exit 3
            └── ResultUrlExpiredError     a result URL expired (queried again)

Signals that never leave their module (caught where they are raised, so not BulkimgErrors):
`s3/http1.py`'s ProtocolError, ClosedBeforeAnswerError, DeadlineExceededError and
BodyCutShortError (one connection's GET; `s3/get.py` turns them into S3GetError or a retry),
`images/header.py`'s NeedBytes (read further) and InvalidImage (the file is rejected), and
`s3/listing.py`'s OutOfOrderError (a page against S3's key order: the listing falls back to one
listing per folder). The sandbox's FaultRuleError is the sandbox's (a bad fault rule: HTTP 400).

Messages never contain secrets: callers pass names and keys, never credentials or signed URLs.
As a second guard, the CLI masks every secret the settings hold (`register_secret`) in whatever
it prints, a traceback included (`scrub`).
"""

from __future__ import annotations

from urllib.parse import quote, unquote

# Shorter values would mask ordinary words; real credentials are longer.
MIN_SECRET_LENGTH = 6
_secrets: set[str] = set()


def register_secret(*values: str | None) -> None:
    """Remember credentials to mask in anything the CLI prints (as given, encoded and decoded)."""
    for value in values:
        if value:
            forms = {value, unquote(value), quote(value, safe=""), quote(value)}
            _secrets.update(v for v in forms if len(v) >= MIN_SECRET_LENGTH)


def scrub(text: str) -> str:
    """`text` with every registered secret replaced by ***."""
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class BulkimgError(Exception):
    """Base of every error bulkimg raises on purpose."""


class UserError(BulkimgError):
    """An error the user caused and can fix; reported as one line, exit code 2."""

    exit_code = 2


class ConfigError(UserError):
    """A setting is missing or invalid."""


class CatalogError(UserError):
    """The catalog cannot be read as configured."""


class InputFileError(UserError):
    """A file named on the command line is missing or malformed."""


class RemoteError(BulkimgError):
    """A remote service failed and retrying did not help."""

    exit_code = 1


class S3Error(RemoteError):
    """An S3 request failed for good (after botocore's own retries)."""
