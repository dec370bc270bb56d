"""Settings: command-line flags > environment > `.env` > `bulkimg.toml` > defaults."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, ClassVar, Final, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bulkimg.errors import ConfigError, register_secret

# The Admin GraphQL API version the documents in graphql/ are written and validated against.
ADMIN_API_VERSION: Final = "2026-10"

DEFAULT_CONFIG_FILE = Path("bulkimg.toml")


def _env(name: str, *env_names: str) -> AliasChoices:
    """Accept the field name (flags, TOML) and the given environment names."""
    return AliasChoices(name, *env_names)


class Settings(BaseSettings):
    """Every setting bulkimg reads; `.env.example` documents each one."""

    model_config = SettingsConfigDict(
        env_prefix="BULKIMG_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        validate_default=True,
    )

    # Catalog
    catalog: str | None = None
    table: str = "nav_items"
    column_sku: str = "No_"
    column_image_sku: str = "Image_SKU"
    column_group: str = "Web_Product_Group_ID"
    column_title: str = "Description"
    column_order: str = "No_"
    mysql_password: SecretStr | None = Field(
        None, validation_alias=_env("mysql_password", "MYSQL_PASSWORD")
    )

    # S3
    aws_access_key_id: SecretStr | None = Field(
        None, validation_alias=_env("aws_access_key_id", "AWS_ACCESS_KEY_ID")
    )
    aws_secret_access_key: SecretStr | None = Field(
        None, validation_alias=_env("aws_secret_access_key", "AWS_SECRET_ACCESS_KEY")
    )
    aws_session_token: SecretStr | None = Field(
        None, validation_alias=_env("aws_session_token", "AWS_SESSION_TOKEN")
    )
    aws_region: str = Field("us-east-1", validation_alias=_env("aws_region", "AWS_REGION"))
    aws_s3_bucket: str | None = Field(None, validation_alias=_env("aws_s3_bucket", "AWS_S3_BUCKET"))
    aws_endpoint_url_s3: str | None = Field(
        None,
        validation_alias=_env("aws_endpoint_url_s3", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    )
    s3_prefix: str = "sorted-media/"
    # auto: skip-scan (StartAfter jumps between the sorted needed folders, no history needed);
    # folders: one listing per folder; sweep: one listing per first-level prefix.
    s3_list_strategy: Literal["auto", "folders", "sweep"] = "auto"
    # Header reads in flight: each waits a network round trip for far less CPU than that.
    s3_workers: int = Field(64, ge=1, le=256)
    s3_max_attempts: int = Field(8, ge=1, le=50)
    # The header reads' ranged GETs and the listing's pages (s3/get.py): a presigned URL over
    # kept-alive connections (direct, the cheapest), over httpx (also used when a proxy
    # applies), or boto3 (get_object and list_objects_v2); docs/performance.md has the costs.
    s3_get_client: Literal["direct", "httpx", "boto3"] = "direct"
    presign_seconds: int = Field(86_400, ge=60, le=604_800)
    # The least time a presigned URL submit (or retry) sends must stay valid: Shopify fetches the
    # images while the bulk operation runs. Submit re-signs every URL with fresh credentials and
    # refuses when the credentials expire sooner.
    submit_link_seconds: int = Field(1800, ge=60, le=604_800)

    # Image rules
    min_width: int = Field(200, ge=1)
    min_height: int = Field(200, ge=1)
    max_image_bytes: int = Field(20 * 1024 * 1024, ge=1)
    max_megapixels: float = Field(20.0, gt=0)
    probe_initial_bytes: int = Field(64 * 1024, ge=64)
    probe_max_bytes: int = Field(4 * 1024 * 1024, ge=1024)

    # Shopify lines
    handle_template: str = "{group_id}"
    alt_template: str = "{image_sku} - Image {variation}"
    # Products that do not exist on the shop: created from the catalog (title, one option telling
    # the variants apart, variants) with this status, or skipped and reported (create_products
    # false, `--no-create`). Products that exist only ever get their images changed.
    create_products: bool = True
    create_status: Literal["DRAFT", "ACTIVE", "ARCHIVED", "UNLISTED"] = "DRAFT"
    # Variant images (shop/variantimages.py): a variant showing an image bulkimg does not own, or
    # another image of its own Image_SKU, keeps it unless this is true (`--replace-variant-images`).
    replace_variant_images: bool = False
    option_name: str = "SKU"
    max_jsonl_bytes: int = Field(100_000_000, ge=1024)

    # Run preview (output/preview.html)
    preview_thumbnails: bool = False

    # Shopify
    shopify_shop: str | None = Field(None, validation_alias=_env("shopify_shop", "SHOPIFY_SHOP"))
    shopify_access_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("SHOPIFY_ACCESS_TOKEN")
    )
    shopify_api_version: str = Field(
        ADMIN_API_VERSION, validation_alias=_env("shopify_api_version", "SHOPIFY_API_VERSION")
    )
    shopify_timeout: float = Field(30.0, gt=0)
    shopify_max_attempts: int = Field(8, ge=1, le=50)
    bulk_concurrency: int = Field(5, ge=1, le=50)
    poll_interval: float = Field(2.0, gt=0)
    poll_max_interval: float = Field(30.0, gt=0)
    media_wait_seconds: float = Field(600.0, ge=0)
    submit_recovery_seconds: float = Field(60.0, ge=0)

    # Files
    output_dir: Path = Path("output")
    logs_dir: Path = Path("logs")
    cache_dir: Path = Path("output/cache")
    state_file: Path = Path("output/state.sqlite")
    keep_runs: int = Field(14, ge=1)

    _toml_file: ClassVar[Path | None] = None

    @field_validator("s3_prefix")
    @classmethod
    def _prefix_ends_with_slash(cls, value: str) -> str:
        return value if value.endswith("/") or not value else value + "/"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        if cls._toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls._toml_file))
        return tuple(sources)

    def require(self, *names: str) -> None:
        """Raise ConfigError naming the first of `names` that has no value."""
        for name in names:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            if value in (None, ""):
                raise ConfigError(f"missing setting {describe_setting(name)}")


_ENV_NAMES = {
    name: [c for c in field.validation_alias.choices if isinstance(c, str) and c.isupper()]
    for name, field in Settings.model_fields.items()
    if isinstance(field.validation_alias, AliasChoices)
}


def env_name(field: str) -> str:
    """The environment variable that sets `field`."""
    names = _ENV_NAMES.get(field)
    return names[0] if names else f"BULKIMG_{field.upper()}"


ENVIRONMENT_ONLY = frozenset({"shopify_access_token"})


def describe_setting(field: str) -> str:
    """How a user sets `field`: environment name and TOML key."""
    if field in ENVIRONMENT_ONLY:
        return f"{env_name(field)} (in the environment or .env)"
    return f"{env_name(field)} (or `{field}` in bulkimg.toml)"


def load_settings(
    overrides: dict[str, Any] | None = None,
    config_file: Path | None = None,
    env_file: Path | None = Path(".env"),
) -> Settings:
    """Load settings; `overrides` are command-line values (None means "not given")."""
    toml_path = config_file if config_file is not None else DEFAULT_CONFIG_FILE
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file not found: {config_file}")
    toml_file = toml_path if toml_path.is_file() else None
    if toml_file is not None:
        _check_toml_keys(toml_file)
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    settings_cls = type("LoadedSettings", (Settings,), {"_toml_file": toml_file})
    try:
        settings: Settings = settings_cls(_env_file=env_file, **given)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    _register_secrets(settings)
    return settings


def _register_secrets(settings: Settings) -> None:
    """Every credential of the settings, for the CLI to mask (errors.scrub)."""
    for field in SECRET_FIELDS:
        value = getattr(settings, field)
        register_secret(value.get_secret_value() if value is not None else None)
    if settings.catalog and "://" in settings.catalog:
        userinfo, at, _ = settings.catalog.partition("://")[2].rpartition("@")
        register_secret(userinfo.partition(":")[2] if at else None)


SECRET_FIELDS = (
    "mysql_password",
    "aws_secret_access_key",
    "aws_session_token",
    "shopify_access_token",
)


def _check_toml_keys(path: Path) -> None:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]!r}")
    if "shopify_access_token" in data:
        raise ConfigError(f"{path}: SHOPIFY_ACCESS_TOKEN may only come from the environment")


def _one_line(exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else "?"
    # pydantic puts the offending input in some messages; secrets must never be echoed.
    return f"invalid setting {describe_setting(field)}: {first['msg']}"
