"""Settings: precedence, validation errors as one line, secrets never echoed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bulkimg.config import Settings, env_name, load_settings
from bulkimg.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_flags_beat_environment_beat_dotenv_beat_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bulkimg.toml").write_text(
        'aws_s3_bucket = "from-toml"\ntable = "toml_table"\n'
        's3_workers = 3\naws_region = "eu-west-1"\n'
    )
    (tmp_path / ".env").write_text("AWS_S3_BUCKET=from-dotenv\nBULKIMG_TABLE=dotenv_table\n")
    monkeypatch.setenv("AWS_S3_BUCKET", "from-env")
    settings = load_settings({"aws_s3_bucket": None, "s3_workers": None})
    assert settings.aws_s3_bucket == "from-env"
    assert settings.table == "dotenv_table"
    assert settings.s3_workers == 3
    assert settings.aws_region == "eu-west-1"
    assert load_settings({"aws_s3_bucket": "from-flag"}).aws_s3_bucket == "from-flag"


def test_invalid_setting_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BULKIMG_S3_WORKERS", "lots")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "BULKIMG_S3_WORKERS" in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_required_setting_names_how_to_set_it() -> None:
    settings = load_settings()
    with pytest.raises(ConfigError, match=r"missing setting AWS_S3_BUCKET \(or `aws_s3_bucket`"):
        settings.require("aws_s3_bucket")


def test_secrets_are_not_echoed_in_errors_or_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sekrit-value-123")
    settings = load_settings()
    assert "sekrit-value-123" not in repr(settings)
    assert "sekrit-value-123" not in str(settings.model_dump())


def test_unknown_toml_key_and_missing_config_file_are_clear(tmp_path: Path) -> None:
    (tmp_path / "bulkimg.toml").write_text('bukcet = "x"\n')
    with pytest.raises(ConfigError, match="unknown setting 'bukcet'"):
        load_settings()
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(config_file=tmp_path / "nope.toml")


def test_endpoint_url_comes_from_boto3s_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
    assert load_settings().aws_endpoint_url_s3 == "http://127.0.0.1:9000"


def test_env_example_documents_every_setting() -> None:
    text = (REPO / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z0-9_]+)=", text, re.MULTILINE))
    expected = {env_name(name) for name in Settings.model_fields}
    assert expected <= documented, sorted(expected - documented)
    assert "AWS_ENDPOINT_URL_S3" in documented


def test_readme_configuration_table_lists_every_setting() -> None:
    text = (REPO / "README.md").read_text()
    missing = [env_name(n) for n in Settings.model_fields if f"`{env_name(n)}`" not in text]
    assert not missing
