"""The exceptions bulkimg raises, so a caller can catch exactly the family it cares about.

    BulkimgError
    ├── UserError                 the user can fix it; the CLI prints one line and exits 2
    │   ├── ConfigError           a missing or invalid setting
    │   ├── CatalogError          the catalog cannot be read (bad URL, missing table or column)
    │   └── InputFileError        a file given on the command line is missing or malformed
    └── RemoteError               S3 or Shopify failed in a way retrying did not fix
        └── S3Error               an S3 request failed (access denied, missing bucket, network)

Messages never contain secrets: callers pass names and keys, never credentials or signed URLs.
"""

from __future__ import annotations


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
