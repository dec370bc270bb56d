"""The fault matrix's build, made once per module that asks for it (`built`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bulkimg.demo.run import LocalS3
from bulkimg.demo.samples import SampleData
from tests.helpers.faultbuild import build_sample


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, s3_server: LocalS3, sample: SampleData) -> Path:
    return build_sample(tmp_path_factory, s3_server, sample)
