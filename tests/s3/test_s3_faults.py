"""S3 faults during `build`, injected by a proxy in front of moto's server: every row accounted.

Each test builds the sample catalog through `tests/helpers/s3faults.py` and checks the promise of
docs/reliability.md: every catalog row is exactly one of written (its group's line holds it and
its image), deferred (retryable: no line, in the report) or missing (one log line with the
reason); nothing crashes; no credential reaches a log, report, message or the cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bulkimg.config import Settings, load_settings
from bulkimg.demo.run import LocalS3
from bulkimg.demo.samples import SampleData, image_bytes
from bulkimg.errors import S3Error
from bulkimg.formats.build_report import BuildReport
from bulkimg.run.build import run_build
from bulkimg.s3.index import BODY_READ_ATTEMPTS
from bulkimg.s3.keys import folder_for
from tests.helpers.env import CANARY_KEY_ID, CANARY_SECRET, secrets_in
from tests.helpers.fixtures import MakeSettings
from tests.helpers.s3 import Accounting, account
from tests.helpers.s3faults import Fault, FaultProxy, fault_proxy


def assert_nothing_leaked(settings: Settings, text: str = "") -> None:
    """No canary credential in logs, plan, report, cache or `text`; the JSONL holds only URLs."""
    out = settings.output_dir
    places = [settings.logs_dir, settings.cache_dir, out / "plan.jsonl", out / "build-report.json"]
    assert secrets_in([p for p in places if p.exists()], text) == []
    for path in out.rglob("*"):  # presigned URLs carry the session token, never the secret
        assert not path.is_file() or CANARY_SECRET.encode() not in path.read_bytes(), path


@pytest.fixture
def proxy(s3_server: LocalS3) -> Iterator[FaultProxy]:
    with fault_proxy(s3_server.endpoint_url) as running:
        yield running


@pytest.fixture(params=["direct", "httpx", "boto3"])
def get_client(request: pytest.FixtureRequest) -> str:
    """The header reads' GET path (BULKIMG_S3_GET_CLIENT): each fault is met by all three."""
    client: str = request.param
    return client


@pytest.fixture
def build_through(
    make_settings: MakeSettings,
    proxy: FaultProxy,
    bucket: str,
    sample: SampleData,
    tmp_path: Path,
    get_client: str,
) -> Any:
    """Build the sample catalog through the proxy: (settings, report, accounting)."""
    catalog = str(sample.write_csv(tmp_path / "nav_items.csv"))

    def build(**overrides: Any) -> tuple[Settings, BuildReport, Accounting]:
        overrides.setdefault("s3_get_client", get_client)
        settings: Settings = make_settings(
            catalog=catalog, aws_s3_bucket=bucket, aws_endpoint_url_s3=proxy.url, **overrides
        )
        report = run_build(settings).report
        return settings, report, account(settings, report, sample)

    return build


@pytest.fixture(scope="module")
def bucket(s3_server: LocalS3, sample: SampleData) -> str:
    """One bucket with the sample for the module; tests that change it restore it (`changed`)."""
    import uuid

    name = f"faults-{uuid.uuid4().hex[:8]}"
    client = s3_server.client()
    client.create_bucket(Bucket=name)
    sample.upload(client, name)
    return name


@pytest.fixture
def changed(s3_server: LocalS3, bucket: str, sample: SampleData) -> Iterator[list[str]]:
    """Keys a test changes in the bucket: put back as the sample has them afterwards."""
    keys: list[str] = []
    yield keys
    client = s3_server.client()
    for key in keys:
        if key in sample.objects:
            client.put_object(Bucket=bucket, Key=key, Body=sample.objects[key])
        else:
            client.delete_object(Bucket=bucket, Key=key)


@pytest.fixture(scope="module")
def clean(
    s3_server: LocalS3, bucket: str, sample: SampleData, tmp_path_factory: pytest.TempPathFactory
) -> Accounting:
    """The sample's accounting with no fault injected (what every transient fault must give)."""
    tmp = tmp_path_factory.mktemp("clean")
    settings = load_settings(
        {
            "catalog": str(sample.write_csv(tmp / "nav_items.csv")),
            "aws_s3_bucket": bucket,
            "aws_endpoint_url_s3": s3_server.endpoint_url,
            "aws_access_key_id": CANARY_KEY_ID,
            "aws_secret_access_key": CANARY_SECRET,
            "output_dir": tmp / "output",
            "logs_dir": tmp / "logs",
            "cache_dir": tmp / "cache",
            "s3_workers": 4,
        },
        env_file=None,
    )
    report = run_build(settings).report
    assert not report.groups_deferred
    accounting = account(settings, report, sample)
    assert {o.split(":")[0] for o in accounting.rows.values()} == {"written", "missing"}
    return accounting


TRANSIENT = [
    pytest.param(
        [
            Fault("GET", "status", 503, "SlowDown", count=4),
            Fault("LIST", "status", 503, "SlowDown"),
        ],
        marks=pytest.mark.fault_matrix(
            area="S3",
            fault="503 SlowDown on GetObject (4 times) and ListObjectsV2 (once)",
            outcome="retried; every row as without the fault, 0 deferred",
        ),
        id="503-slowdown",
    ),
    pytest.param(
        [
            Fault("GET", "status", 500, "InternalError", count=3, after=5),
            Fault("LIST", "status", 500, "InternalError", count=2),
        ],
        marks=pytest.mark.fault_matrix(
            area="S3",
            fault="500 InternalError on GetObject (3 times) and ListObjectsV2 (twice)",
            outcome="retried; every row as without the fault, 0 deferred",
        ),
        id="500-internal",
    ),
    pytest.param(
        [Fault("GET", "reset", count=6), Fault("LIST", "reset", count=2)],
        marks=pytest.mark.fault_matrix(
            area="S3",
            fault="connection reset with no answer (6 GETs, 2 LISTs)",
            outcome="retried; every row as without the fault, 0 deferred",
        ),
        id="connection-reset",
    ),
    pytest.param(
        [Fault("GET", "truncate", count=3, after=2), Fault("LIST", "truncate", count=1)],
        marks=pytest.mark.fault_matrix(
            area="S3",
            fault="body cut short (Content-Length promised, socket closed) on 3 GETs and a LIST",
            outcome="read again; every row as without the fault, 0 deferred",
        ),
        id="body-cut-short",
    ),
]


@pytest.mark.parametrize("faults", TRANSIENT)
def test_transient_s3_faults_are_retried_and_change_no_row(
    proxy: FaultProxy, build_through: Any, clean: Accounting, faults: list[Fault]
) -> None:
    proxy.add(*(replace(f) for f in faults))  # fresh counters, whatever ran before
    settings, report, accounting = build_through()
    assert sum(proxy.injected.values()) == sum(f.count or 0 for f in faults)  # every fault met
    assert report.groups_deferred == {}
    assert accounting == clean
    assert report.s3_http_attempts > sum(report.s3_requests.values())
    assert_nothing_leaked(settings)


@pytest.mark.fault_matrix(
    area="S3",
    fault="one object's body is cut short on every read",
    outcome="its group deferred after 3 reads (retryable, reason in build-report.json, no line,"
    " not logged as missing); every other row as without the fault",
)
def test_an_object_always_cut_short_defers_only_its_group(
    proxy: FaultProxy, build_through: Any, clean: Accounting
) -> None:
    proxy.add(Fault("GET", "truncate", count=None, key_contains="1102192-2a"))
    settings, report, accounting = build_through()
    # The error's name: http.client's or httpx's for a presigned GET, botocore's for get_object.
    cut = {
        "direct": "IncompleteRead(100 of 3719 bytes)",
        "httpx": "RemoteProtocolError",
        "boto3": "ResponseStreamingError",
    }
    assert report.groups_deferred == {
        "LGD-101792": "S3 could not read sorted-media/11/02/19/1102192-2a-201.png"
        f" ({cut[settings.s3_get_client]})"
    }
    assert proxy.injected["truncate"] == BODY_READ_ATTEMPTS
    assert accounting.changed(clean) == {"LGD-101792"}
    assert {o for (g, _), o in accounting.rows.items() if g == "LGD-101792"} == {"deferred"}
    assert_nothing_leaked(settings)
    # Retryable: once S3 answers, the next build (same cache) writes the group as usual.
    proxy.clear()
    _, _, again = build_through()
    assert again == clean


@pytest.mark.fault_matrix(
    area="S3",
    fault="403 AccessDenied on one object (the bucket itself readable)",
    outcome="its group deferred, the build goes on (not a configuration error); every other row"
    " as without the fault",
)
def test_access_denied_on_one_object_defers_its_group_not_the_build(
    proxy: FaultProxy, build_through: Any, clean: Accounting
) -> None:
    proxy.add(Fault("GET", "status", 403, "AccessDenied", count=None, key_contains="555001-3a"))
    settings, report, accounting = build_through()
    assert report.groups_deferred == {
        "GID-100999": "S3 could not read sorted-media/55/50/01/555001-3a-1.jpg (AccessDenied)"
    }
    assert accounting.changed(clean) == {"GID-100999"}
    assert_nothing_leaked(settings)


@pytest.mark.fault_matrix(
    area="S3",
    fault="object replaced (new bytes, new ETag) between listing and reading",
    outcome="its group deferred, not written without the image (productSet would delete it);"
    " the next build uses the new version",
)
def test_an_object_replaced_after_listing_defers_its_group_until_the_next_build(
    proxy: FaultProxy,
    build_through: Any,
    clean: Accounting,
    s3_server: LocalS3,
    bucket: str,
    changed: list[str],
) -> None:
    key = next(k for k in clean.media["LGD-101792"] if "2a-201" in k)
    changed.append(key)
    client = s3_server.client()

    def replace() -> None:
        client.put_object(Bucket=bucket, Key=key, Body=image_bytes("png", 500, 500, "new"))

    proxy.add(Fault("GET", "call", key_contains=key, hook=replace))
    settings, report, accounting = build_through()
    assert list(report.groups_deferred) == ["LGD-101792"]
    assert "replaced since listed (PreconditionFailed)" in report.groups_deferred["LGD-101792"]
    assert accounting.changed(clean) == {"LGD-101792"}
    assert_nothing_leaked(settings)
    _, report, again = build_through()
    assert report.groups_deferred == {}
    assert again == clean


@pytest.mark.fault_matrix(
    area="Secrets",
    fault="S3 errors and deferrals while running with canary credentials (the CLI, as a process)",
    outcome="no credential in stdout/stderr, logs, plan, report or cache; the secret key in no"
    " output file",
)
@pytest.mark.fault_matrix(
    area="S3",
    fault="one object answers 500 to every attempt (the CLI, as a process)",
    outcome="exit 1, its group deferred and named on stderr, no traceback, no secret in any"
    " output; every other row as without the fault",
)
def test_cli_build_exits_1_and_defers_the_group_s3_cannot_read(
    proxy: FaultProxy, bucket: str, sample: SampleData, clean: Accounting, tmp_path: Path,
    make_settings: MakeSettings,
) -> None:  # fmt: skip
    from tests.helpers.cli import bulkimg, env_for

    proxy.add(Fault("GET", "status", 500, "InternalError", count=None, key_contains="1102192-2a"))
    catalog = sample.write_csv(tmp_path / "nav_items.csv")
    env = env_for(LocalS3(proxy.url), bucket, catalog)
    env |= {"BULKIMG_S3_MAX_ATTEMPTS": "2", "BULKIMG_S3_WORKERS": "4"}
    result = bulkimg(tmp_path, "build", "--all", env=env)
    assert result.returncode == 1, result.stderr
    assert "LGD-101792" in result.stderr and "Traceback" not in result.stderr
    settings = make_settings(output_dir=tmp_path / "output", cache_dir=tmp_path / "output/cache")
    report = BuildReport.model_validate_json((tmp_path / "output/build-report.json").read_bytes())
    assert list(report.groups_deferred) == ["LGD-101792"]
    assert "InternalError" in report.groups_deferred["LGD-101792"]
    accounting = account(settings, report, sample)
    assert accounting.changed(clean) == {"LGD-101792"}
    assert_nothing_leaked(settings, result.stdout + result.stderr)


@pytest.mark.fault_matrix(
    area="S3",
    fault="every ListObjectsV2 answers 500 (after retries)",
    outcome="build fails (S3Error, exit 1) naming the prefix, no secret; no output written",
)
def test_a_listing_s3_never_answers_fails_the_build_cleanly(
    proxy: FaultProxy, build_through: Any, tmp_path: Path
) -> None:
    proxy.add(Fault("LIST", "status", 500, "InternalError", count=None))
    with pytest.raises(S3Error, match="InternalError") as failed:
        build_through(s3_max_attempts=2)
    assert "sorted-media/" in str(failed.value)
    assert secrets_in([tmp_path], str(failed.value)) == []
    assert not (tmp_path / "output").exists() or not any((tmp_path / "output").iterdir())


def only_image_group(clean: Accounting) -> tuple[str, str]:
    """A group with exactly one image whose rows all show it, and that image's key."""
    for group, keys in sorted(clean.media.items()):
        outcomes = {o for (g, _), o in clean.rows.items() if g == group}
        if len(keys) == 1 and outcomes == {"written"}:
            return group, keys[0]
    raise AssertionError("the sample has no single-image group")


@pytest.mark.fault_matrix(
    area="S3",
    fault="objects deleted between listing and reading (one of several images; a group's only"
    " image)",
    outcome="left out of the line; the group losing its only image has its rows missing with the"
    " reason; every other row as without the fault",
)
def test_objects_deleted_after_listing_are_left_out_and_logged(
    proxy: FaultProxy, build_through: Any, clean: Accounting, changed: list[str]
) -> None:
    group, key = only_image_group(clean)
    changed.extend([key, next(k for k in clean.media["LGD-101792"] if "2a-201" in k)])
    proxy.add(
        Fault("GET", "delete", count=1, key_contains="1102192-2a-201.png"),
        Fault("GET", "delete", count=1, key_contains=key),
    )
    settings, report, accounting = build_through()
    assert proxy.injected["delete"] == 2
    assert accounting.changed(clean) == {"LGD-101792", group}
    lost = [k for k in clean.media["LGD-101792"] if "2a-201" not in k]
    assert accounting.media["LGD-101792"] == lost
    assert accounting.media[group] == []
    outcomes = {o for (g, _), o in accounting.rows.items() if g == group}
    assert outcomes == {
        "missing: All images too small or invalid (1 changed or deleted while being read)"
    }
    assert report.images_rejected["changed or deleted while being read"] == 2
    assert_nothing_leaked(settings)


@pytest.mark.fault_matrix(
    area="S3",
    fault="zero-byte objects (a group's only image; one image of several)",
    outcome="rejected from the listing without a GET; rows without image missing with the"
    " reason; every other row as without the fault",
)
def test_zero_byte_objects_are_rejected_without_reading_them(
    proxy: FaultProxy,
    build_through: Any,
    clean: Accounting,
    s3_server: LocalS3,
    bucket: str,
    changed: list[str],
) -> None:
    group, key = only_image_group(clean)
    gif = next(k for k in clean.media["LGD-101792"] if k.endswith("10a-300.gif"))
    changed.extend([key, gif])
    for emptied in (key, gif):
        s3_server.client().put_object(Bucket=bucket, Key=emptied, Body=b"")
    settings, _, accounting = build_through()
    assert proxy.keys[key] == proxy.keys[gif] == 0
    assert accounting.changed(clean) == {"LGD-101792", group}
    assert accounting.media["LGD-101792"] == [k for k in clean.media["LGD-101792"] if k != gif]
    outcomes = {o for (g, _), o in accounting.rows.items() if g == group}
    assert outcomes == {"missing: All images too small or invalid (1 empty file)"}
    assert_nothing_leaked(settings)


@pytest.mark.fault_matrix(
    area="S3",
    fault="listing changes between pages: an already-listed object deleted, one added ahead of"
    " the cursor, one ahead removed",
    outcome="the added image is used, the removed ones are not; every row accounted exactly once",
)
def test_a_listing_that_changes_between_pages_is_accounted(
    proxy: FaultProxy,
    build_through: Any,
    clean: Accounting,
    s3_server: LocalS3,
    bucket: str,
    changed: list[str],
) -> None:
    client = s3_server.client()
    swept = sorted(k for keys in clean.media.values() for k in keys if "/82/" in k)
    first, last = swept[0], swept[-1]  # listed before the change; listed after it
    sku = last.rsplit("/", 1)[1].split("-", 1)[0]
    added = folder_for(sku) + f"{sku}-7a-77777.jpg"
    removed_ahead = swept[-2]  # not listed yet when the bucket changes
    changed.extend([first, added, removed_ahead])

    def change_the_bucket() -> None:
        client.delete_object(Bucket=bucket, Key=first)
        client.put_object(Bucket=bucket, Key=added, Body=image_bytes("jpg", 400, 400))
        client.delete_object(Bucket=bucket, Key=removed_ahead)

    proxy.list_page_size = 3
    proxy.add(
        Fault("LIST", "call", key_contains="sorted-media/82/", after=2, hook=change_the_bucket)
    )
    settings, report, accounting = build_through(s3_list_strategy="sweep")
    assert proxy.injected["call"] == 1
    assert report.list_pages > 10
    used = {k for keys in accounting.media.values() for k in keys}
    assert added in used
    assert first not in used and removed_ahead not in used
    assert report.images_rejected["changed or deleted while being read"] == 1
    assert proxy.keys[removed_ahead] == 0  # never listed, so never read
    assert len(accounting.rows) == len(clean.rows)
    assert_nothing_leaked(settings)


@pytest.mark.fault_matrix(
    area="S3",
    fault="an S3 endpoint that lists like a filer (SeaweedFS): directory order, and"
    " StartAfter=a/19 read as after the whole directory a/19/ (it lost 3 of 90 images)",
    outcome="the skip-scan starts each folder after `a/19/`, which such a server reads as S3"
    " does: every row as with S3; the report names the strategy and why (a custom endpoint,"
    " every page checked)",
)
def test_a_listing_in_a_filers_order_misses_no_folder(
    proxy: FaultProxy, build_through: Any, clean: Accounting
) -> None:
    proxy.list_order = "directory"
    proxy.list_page_size = 3
    settings, report, accounting = build_through()
    assert accounting == clean
    assert report.list_strategy == "skip-scan"
    assert report.list_strategy_reason.startswith("auto on the S3 endpoint 127.0.0.1:")
    assert "(not AWS): every page is checked" in report.list_strategy_reason
    assert report.warnings == []
    assert_nothing_leaked(settings)


@pytest.mark.fault_matrix(
    area="S3",
    fault="listing pages out of S3's byte order (a filer lists a/19/x before a/19-old/y)",
    outcome="the skip-scan stops at the first such page and the run lists folder by folder:"
    " every row as with S3; strategy folders, the why and a warning in build-report.json;"
    " the same bucket in S3's order stays skip-scan",
)
def test_a_listing_out_of_byte_order_switches_to_folders_and_says_so(
    proxy: FaultProxy,
    build_through: Any,
    clean: Accounting,
    s3_server: LocalS3,
    bucket: str,
    changed: list[str],
) -> None:
    folder = sorted(k for keys in clean.media.values() for k in keys)[0].rsplit("/", 1)[0]
    strays = [f"{folder}-old/x.txt", f"{folder}.bak/y.txt"]  # sort before {folder}/ in S3
    changed.extend(strays)
    for key in strays:
        s3_server.client().put_object(Bucket=bucket, Key=key, Body=b"x")
    proxy.list_order = "directory"
    proxy.list_page_size = 3
    settings, report, accounting = build_through()
    assert accounting == clean
    assert report.list_strategy == "folders"
    assert report.list_strategy_reason.startswith(
        "switched from skip-scan: the S3 endpoint 127.0.0.1:"
    )
    assert len(report.warnings) == 1
    assert "does not list keys in S3's byte order" in report.warnings[0]
    assert any(stray in report.warnings[0] for stray in strays)
    assert_nothing_leaked(settings)

    proxy.list_order = "s3"  # the same bucket as S3 lists it: no false alarm
    _, report, again = build_through()
    assert (report.list_strategy, report.warnings) == ("skip-scan", [])
    assert again == clean
