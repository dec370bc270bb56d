"""bulkimg: product images from S3 onto Shopify with bulk operations.

The library behind the `bulkimg` command, one call per stage (the CLI only parses and prints):

    settings = load_settings()                      # config.py
    result = run_build(settings, ...)               # run/build.py: catalog + S3 -> lines, plan
    checks = run_checks(settings)                   # run/preflight.py: `bulkimg check`
    submission = Submission(settings, client)       # run/submit.py: `bulkimg submit --wait`
    inputs, outcome = run_retry(settings, client, failures, s3)   # run/retry.py
    nightly = run_nightly(settings, ...)            # run/nightly.py: `bulkimg run`
    page = render_preview(settings)                 # run/preview.py

Names are imported on first use, so `import bulkimg` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bulkimg.config import Settings, load_settings
    from bulkimg.errors import BulkimgError, RemoteError, UserError
    from bulkimg.run.against_shop import check_against_shop
    from bulkimg.run.build import run_build
    from bulkimg.run.nightly import run_nightly
    from bulkimg.run.preflight import run_checks
    from bulkimg.run.preview import render_preview
    from bulkimg.run.retry import run_retry
    from bulkimg.run.submit import Submission, SubmitOutcome
    from bulkimg.shopify.client import client_from_settings

_WHERE = {
    "Settings": "bulkimg.config",
    "load_settings": "bulkimg.config",
    "BulkimgError": "bulkimg.errors",
    "RemoteError": "bulkimg.errors",
    "UserError": "bulkimg.errors",
    "render_preview": "bulkimg.run.preview",
    "run_build": "bulkimg.run.build",
    "run_nightly": "bulkimg.run.nightly",
    "run_checks": "bulkimg.run.preflight",
    "run_retry": "bulkimg.run.retry",
    "Submission": "bulkimg.run.submit",
    "SubmitOutcome": "bulkimg.run.submit",
    "check_against_shop": "bulkimg.run.against_shop",
    "client_from_settings": "bulkimg.shopify.client",
}

__all__ = [
    "BulkimgError",
    "RemoteError",
    "Settings",
    "Submission",
    "SubmitOutcome",
    "UserError",
    "check_against_shop",
    "client_from_settings",
    "load_settings",
    "render_preview",
    "run_build",
    "run_checks",
    "run_nightly",
    "run_retry",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'bulkimg' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
