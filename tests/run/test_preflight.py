"""bulkimg check: every check a run needs, on real parts (moto's server, the sandbox), nothing
written."""

from __future__ import annotations

import socket
from pathlib import Path

from bulkimg.config import Settings
from bulkimg.formats.state import StateStore
from bulkimg.run.preflight import run_checks


def outputs(settings: Settings) -> set[Path]:
    return {p for p in settings.output_dir.rglob("*") if p.is_file()}


def test_every_check_passes_against_a_working_shop_and_bucket(settings: Settings) -> None:
    before = outputs(settings)
    checks = run_checks(settings)
    assert [(c.name, c.ok) for c in checks] == [
        ("shop", True), ("S3 bucket", True), ("S3 listing", True), ("presigned URL", True),
    ]  # fmt: skip
    assert "HTTP 206" in checks[-1].detail
    assert outputs(settings) == before  # nothing written


def test_a_dead_shop_address_is_named_and_the_s3_checks_still_run(settings: Settings) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    dead = settings.model_copy(update={"shopify_shop": f"http://127.0.0.1:{port}"})
    checks = {c.name: c for c in run_checks(dead)}
    assert not checks["shop"].ok and f"127.0.0.1:{port}" in checks["shop"].detail
    assert checks["presigned URL"].ok


def test_a_state_file_of_another_shop_fails_its_check(settings: Settings) -> None:
    StateStore(settings.state_file, "https://another-shop.example").close()
    checks = {c.name: c for c in run_checks(settings)}
    assert not checks["state file"].ok and "another-shop.example" in checks["state file"].detail


def test_a_missing_bucket_is_one_line_naming_it(settings: Settings) -> None:
    missing = settings.model_copy(update={"aws_s3_bucket": "no-such-bucket-here"})
    checks = {c.name: c for c in run_checks(missing)}
    assert not checks["S3 bucket"].ok and "no-such-bucket-here" in checks["S3 bucket"].detail
    assert "\n" not in checks["S3 bucket"].detail


def test_check_command_prints_one_line_per_check_and_exits_2_on_a_failure(
    settings: Settings,
) -> None:
    from click.testing import CliRunner

    from bulkimg.cli import cli
    from tests.helpers.env import SHOP_TOKEN

    env = {
        "SHOPIFY_SHOP": "http://127.0.0.1:9",  # discard: nothing listens there
        "SHOPIFY_ACCESS_TOKEN": SHOP_TOKEN,
        "AWS_S3_BUCKET": settings.aws_s3_bucket or "",
        "AWS_ENDPOINT_URL_S3": settings.aws_endpoint_url_s3 or "",
        "BULKIMG_OUTPUT_DIR": str(settings.output_dir),
    }
    result = CliRunner().invoke(cli, ["check"], env=env)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert lines[0].startswith("FAIL shop: http://127.0.0.1:9")
    assert any(line.startswith("ok   S3 bucket") for line in lines)
    assert SHOP_TOKEN not in result.output
