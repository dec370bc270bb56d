"""The types of the shared fixtures (tests/conftest.py) that hand out factories, for test
signatures: `make_settings: MakeSettings`, `make_sandbox: MakeSandbox`, `image_url: ImageUrl`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from bulkimg.config import Settings
from tests.helpers.sandbox import SandboxSession


class MakeSettings(Protocol):
    """Settings for a run in the test's tmp_path with canary credentials; keywords override."""

    def __call__(self, **overrides: Any) -> Settings: ...


class MakeSandbox(Protocol):
    """A sandbox shop served on loopback (its state file, SandboxConfig overrides)."""

    def __call__(self, state: Path | None = None, **overrides: Any) -> SandboxSession: ...


class ImageUrl(Protocol):
    """Bytes put in moto's S3 (a real image by default); a presigned GET URL for them."""

    def __call__(
        self,
        name: str = "img.jpg",
        data: bytes | None = None,
        size: tuple[int, int] = (64, 48),
        expires_in: int = 600,
    ) -> str: ...
