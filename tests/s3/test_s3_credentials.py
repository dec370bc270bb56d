"""Temporary credentials: links capped by when they expire, refreshed, and signed again by submit.

A presigned URL dies with the session that signed it whatever its X-Amz-Expires says. The
credentials here are botocore's own RefreshableCredentials (what an assumed role, SSO, or a
container or instance role gives), with an STS-style session token, expiring in minutes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
from botocore.credentials import RefreshableCredentials
from mypy_boto3_s3 import S3Client

from bulkimg.config import Settings, load_settings
from bulkimg.demo.samples import SampleData
from bulkimg.errors import ConfigError
from bulkimg.run.build import run_build
from bulkimg.run.ledger import productset_files_of_build
from bulkimg.run.submit import Submission
from bulkimg.s3.client import make_s3_client
from bulkimg.s3.presign import SIGV4_MAX_SECONDS, link_lifetime, presigner
from bulkimg.shopify.client import client_from_settings
from tests.helpers.env import BUCKET, CANARY_SECRET, CANARY_TOKEN
from tests.helpers.fixtures import MakeSettings

FIRST_KEY = "ASIAFIRSTSESSION0001"
FRESH_KEY = "ASIAFRESHSESSION0002"


def session(
    key: str, minutes: float, then: tuple[str, float] | None = None
) -> RefreshableCredentials:
    """STS-style credentials (key, secret, session token) expiring in `minutes`; a refresh gives
    `then` (key, minutes), or the same session again (a session that cannot be extended)."""

    def metadata(key_id: str, left: float) -> dict[str, str]:
        expiry = datetime.now(UTC) + timedelta(minutes=left)
        return {
            "access_key": key_id,
            "secret_key": CANARY_SECRET,
            "token": f"{CANARY_TOKEN}-{key_id}",
            "expiry_time": expiry.isoformat(),
        }

    first = metadata(key, minutes)
    refresh: Callable[[], dict[str, str]] = (
        (lambda: metadata(*then)) if then is not None else (lambda: first)
    )
    return RefreshableCredentials.create_from_metadata(first, refresh, "sts-assume-role")


def with_credentials(client: Any, credentials: RefreshableCredentials) -> Any:
    """`client` signing with `credentials` (what botocore's provider chain gives it)."""
    client._request_signer._credentials = credentials
    return client


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def urls_in(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        for raw in path.read_bytes().splitlines():
            line = orjson.loads(raw)
            files = line.get("input", {}).get("files", []) + line.get("media", [])
            found += [f["originalSource"] for f in files]
    return found


def test_links_are_capped_by_credentials_that_expire_in_minutes(
    make_settings: MakeSettings,
) -> None:
    client = with_credentials(make_s3_client(make_settings()), session(FIRST_KEY, 20))
    now = datetime.now(UTC)
    lifetime = link_lifetime(client, 86_400, now)
    assert lifetime.limited_by == "credentials"
    assert 20 * 60 - 5 <= lifetime.seconds <= 20 * 60
    assert "when the S3 session credentials expire" in lifetime.describe()
    url = presigner(client, BUCKET, lifetime.seconds, clock=lambda: now)("a/b.jpg")
    params = query(url)
    assert int(params["X-Amz-Expires"]) == lifetime.seconds
    assert params["X-Amz-Security-Token"] == f"{CANARY_TOKEN}-{FIRST_KEY}"
    assert params["X-Amz-Credential"].startswith(FIRST_KEY)


def test_long_term_keys_are_capped_by_sigv4s_seven_days(make_settings: MakeSettings) -> None:
    client = make_s3_client(make_settings(aws_session_token=None))
    lifetime = link_lifetime(client, SIGV4_MAX_SECONDS + 1, datetime.now(UTC))
    assert (lifetime.seconds, lifetime.limited_by) == (SIGV4_MAX_SECONDS, "sigv4")
    assert lifetime.credentials_expire_at is None


def test_credentials_about_to_expire_are_refreshed_before_signing(
    make_settings: MakeSettings,
) -> None:
    credentials = session(FIRST_KEY, 5, then=(FRESH_KEY, 60))
    client = with_credentials(make_s3_client(make_settings()), credentials)
    now = datetime.now(UTC)
    lifetime = link_lifetime(client, 86_400, now)
    assert 59 * 60 <= lifetime.seconds <= 60 * 60
    params = query(presigner(client, BUCKET, lifetime.seconds, clock=lambda: now)("k.jpg"))
    assert params["X-Amz-Credential"].startswith(FRESH_KEY)
    assert params["X-Amz-Security-Token"] == f"{CANARY_TOKEN}-{FRESH_KEY}"


def test_environment_credentials_with_an_expiry_come_from_the_provider_chain(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    expiry = datetime.now(UTC) + timedelta(minutes=40)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FIRST_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CANARY_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", CANARY_TOKEN)
    monkeypatch.setenv("AWS_CREDENTIAL_EXPIRATION", expiry.isoformat())
    settings = load_settings({"aws_s3_bucket": BUCKET}, env_file=None)
    lifetime = link_lifetime(make_s3_client(settings), 86_400, datetime.now(UTC))
    assert lifetime.limited_by == "credentials"
    assert 40 * 60 - 5 <= lifetime.seconds <= 40 * 60


@pytest.mark.fault_matrix(
    area="S3",
    fault="session credentials (STS token) that expire in 40 minutes, BULKIMG_PRESIGN_SECONDS 24 h",
    outcome="every URL's X-Amz-Expires is capped at the credentials' expiry; build-report.json,"
    " the build's output and the preview say when the links expire and why",
)
def test_a_build_with_session_credentials_says_when_its_links_expire(
    s3: S3Client, make_settings: MakeSettings, tmp_path: Path, sample: SampleData
) -> None:
    sample.upload(s3, BUCKET)
    settings = make_settings(catalog=str(sample.write_csv(tmp_path / "catalog.csv")))
    client = with_credentials(make_s3_client(settings), session(FIRST_KEY, 40))
    report = run_build(settings, None, s3_client=client).report
    assert report.links_expiry.endswith("(when the S3 session credentials expire)")
    urls = urls_in([Path(f) for f in report.productset_files])
    assert urls
    expires_at = datetime.fromisoformat(report.links_expire_at)
    for url in urls:
        params = query(url)
        assert int(params["X-Amz-Expires"]) <= 40 * 60
        assert params["X-Amz-Security-Token"] == f"{CANARY_TOKEN}-{FIRST_KEY}"
        signed = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        assert signed + timedelta(seconds=int(params["X-Amz-Expires"])) == expires_at
    preview = (settings.output_dir / "preview.html").read_text(encoding="utf-8")
    assert report.links_expiry in preview


def test_a_build_refuses_credentials_that_expire_within_a_minute(
    s3: S3Client, make_settings: MakeSettings, tmp_path: Path, sample: SampleData
) -> None:
    sample.upload(s3, BUCKET)
    settings = make_settings(catalog=str(sample.write_csv(tmp_path / "catalog.csv")))
    client = with_credentials(make_s3_client(settings), session(FIRST_KEY, 0.5))
    with pytest.raises(ConfigError, match="too soon to sign links"):
        run_build(settings, None, s3_client=client)
    assert not (settings.output_dir / "plan.jsonl").exists()


def bulk_operations(shop: Any) -> int:
    return len(shop.services.store.bulk_operations())


@pytest.mark.slow
@pytest.mark.fault_matrix(
    area="S3",
    fault="submit after the build's session credentials were replaced (a new STS session)",
    outcome="every URL sent is signed again with the fresh credentials (key, token, date) and"
    " capped at their expiry; the sandbox downloads every image; run completes, exit 0",
)
def test_submit_signs_every_url_it_sends_again_with_fresh_credentials(
    settings: Settings, shop: Any
) -> None:
    build_urls = urls_in(productset_files_of_build(settings.output_dir))
    assert build_urls and all(query(u)["X-Amz-Security-Token"] == CANARY_TOKEN for u in build_urls)
    s3 = with_credentials(make_s3_client(settings), session(FRESH_KEY, 90))
    started = datetime.now(UTC).replace(microsecond=0)
    with client_from_settings(settings) as client:
        submission = Submission(settings, client, s3=s3)
        state = submission.start(productset_files_of_build(settings.output_dir))
        outcome = submission.run(state, wait=True)
    assert outcome.exit_code == 0
    assert outcome.links_expiry and "session credentials" in outcome.links_expiry
    sent = urls_in(sorted(settings.output_dir.glob("productset-resolved-*")))
    assert len(sent) == len(build_urls)
    for url in sent:
        params = query(url)
        assert params["X-Amz-Credential"].startswith(FRESH_KEY)
        assert params["X-Amz-Security-Token"] == f"{CANARY_TOKEN}-{FRESH_KEY}"
        signed = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        assert signed >= started
        assert int(params["X-Amz-Expires"]) <= 90 * 60
    assert outcome.counts["lines_done"] == outcome.counts["lines_submitted"] > 0


@pytest.mark.fault_matrix(
    area="S3",
    fault="submit with session credentials that expire in 10 minutes and cannot be refreshed"
    " further (BULKIMG_SUBMIT_LINK_SECONDS 30 min)",
    outcome="submit refuses with one line (ConfigError, exit 2) naming when they expire;"
    " nothing is sent to the shop",
)
def test_submit_refuses_when_its_links_would_expire_before_shopify_fetches_them(
    settings: Settings, shop: Any
) -> None:
    s3 = with_credentials(make_s3_client(settings), session(FIRST_KEY, 10))
    with client_from_settings(settings) as client:
        submission = Submission(settings, client, s3=s3)
        state = submission.start(productset_files_of_build(settings.output_dir))
        with pytest.raises(ConfigError) as caught:
            submission.run(state, wait=True)
    message = str(caught.value)
    assert "less than BULKIMG_SUBMIT_LINK_SECONDS (1800 s)" in message
    assert "nothing was sent" in message and "\n" not in message
    assert CANARY_TOKEN not in message and CANARY_SECRET not in message
    assert bulk_operations(shop) == 0
    assert not list(settings.output_dir.glob("productset-resolved-*"))


def test_header_reads_presigner_renews_session_credentials_before_they_expire(
    make_settings: MakeSettings,
) -> None:
    """A build longer than the session: its header reads' URLs switch to the refreshed one."""
    now = [datetime.now(UTC)]

    def fresh() -> dict[str, str]:
        expiry = (now[0] + timedelta(minutes=60)).isoformat()
        token = f"{CANARY_TOKEN}-{FRESH_KEY}"
        return {"access_key": FRESH_KEY, "secret_key": CANARY_SECRET, "token": token,
                "expiry_time": expiry}  # fmt: skip

    credentials = RefreshableCredentials(
        FIRST_KEY, CANARY_SECRET, f"{CANARY_TOKEN}-{FIRST_KEY}", now[0] + timedelta(minutes=20),
        fresh, "sts-assume-role", time_fetcher=lambda: now[0],
    )  # fmt: skip
    client = with_credentials(make_s3_client(make_settings()), credentials)
    sign = presigner(client, BUCKET, 3600, clock=lambda: now[0])
    assert query(sign("k.jpg"))["X-Amz-Credential"].startswith(FIRST_KEY)
    now[0] += timedelta(minutes=5)
    assert query(sign("k.jpg"))["X-Amz-Credential"].startswith(FIRST_KEY)
    now[0] += timedelta(minutes=6)  # 9 minutes left: renewed
    params = query(sign("k.jpg"))
    assert params["X-Amz-Credential"].startswith(FRESH_KEY)
    assert params["X-Amz-Security-Token"] == f"{CANARY_TOKEN}-{FRESH_KEY}"


def _fail_one_image(settings: Settings, shop: Any) -> None:
    """A submit whose one image download fails: a failures.jsonl for retry."""
    from bulkimg.sandbox import FaultRule

    shop.faults.add(FaultRule("media_fetch", status=404, url_contains="1102192-2a"))
    with client_from_settings(settings) as client:
        submission = Submission(settings, client)
        first = submission.run(
            submission.start(productset_files_of_build(settings.output_dir)), wait=True
        )
    assert first.exit_code == 1
    shop.faults.clear()


def _retry(settings: Settings, s3: S3Client) -> Any:
    from bulkimg.run.retry import run_retry

    with client_from_settings(settings) as client:
        _, outcome = run_retry(settings, client, settings.output_dir / "failures.jsonl", s3)
    return outcome


@pytest.mark.slow
def test_retry_signs_the_urls_it_sends_with_fresh_credentials(
    settings: Settings, shop: Any
) -> None:
    _fail_one_image(settings, shop)
    s3 = with_credentials(make_s3_client(settings), session(FRESH_KEY, 90))
    outcome = _retry(settings, s3)
    assert outcome is not None and outcome.exit_code == 0
    resolved = sorted(settings.output_dir.glob("productset-resolved-*"))
    retried = [p for p in resolved if "retry" in p.name]
    assert retried, [p.name for p in resolved]
    urls = urls_in(retried)
    assert urls and all(query(u)["X-Amz-Credential"].startswith(FRESH_KEY) for u in urls)


@pytest.mark.slow
def test_retry_refuses_when_its_links_would_expire_before_shopify_fetches_them(
    settings: Settings, shop: Any
) -> None:
    _fail_one_image(settings, shop)
    before = bulk_operations(shop)
    s3 = with_credentials(make_s3_client(settings), session(FIRST_KEY, 10))
    with pytest.raises(ConfigError, match="nothing was sent"):
        _retry(settings, s3)
    assert bulk_operations(shop) == before
