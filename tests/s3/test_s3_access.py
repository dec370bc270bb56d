"""S3 as it really is: a bucket in another region, links S3 refuses, and the fast path's fallbacks.

moto checks no region and no signature: a proxy in front of moto's server
(tests/helpers/s3faults.py) answers as S3 does to a request signed for the wrong region — 400
with the bucket's region in `x-amz-bucket-region` — and can refuse the build's link check as S3
refuses a bad signature.
"""

from __future__ import annotations

import re
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import orjson
import pytest
from botocore.config import Config

from bulkimg.cli import print_build_summary
from bulkimg.config import Settings
from bulkimg.demo.run import LocalS3
from bulkimg.demo.samples import SampleData
from bulkimg.errors import ConfigError
from bulkimg.run.build import run_build
from tests.helpers.env import secrets_in
from tests.helpers.fixtures import MakeSettings
from tests.helpers.s3 import account
from tests.helpers.s3faults import FaultProxy, Refusal, Request, fault_proxy

BUCKET_REGION = "eu-west-1"


def signing_region(request: Request) -> str | None:
    """The region a request is signed for: its credential scope (query or Authorization)."""
    credential = request.query.get("X-Amz-Credential")
    if credential is None:
        auth = request.headers.get("authorization", "")
        credential = auth.partition("Credential=")[2].partition(",")[0]
    scope = credential.split("/")
    return scope[2] if len(scope) == 5 else None


def refuse_other_regions(request: Request) -> Refusal | None:
    """S3's answer to a request signed for a region that is not the bucket's."""
    region = signing_region(request)
    if region == BUCKET_REGION:
        return None
    code = (
        "AuthorizationQueryParametersError"
        if "X-Amz-Credential" in request.query
        else "AuthorizationHeaderMalformed"
    )
    return Refusal(400, code, {"x-amz-bucket-region": BUCKET_REGION})


@pytest.fixture(scope="module")
def eu_bucket(s3_server: LocalS3, sample: SampleData) -> str:
    """The sample in a bucket of eu-west-1 (moto's HeadBucket names that region)."""
    name = f"eu-{uuid.uuid4().hex[:8]}"
    client = s3_server.client()
    client.create_bucket(
        Bucket=name, CreateBucketConfiguration={"LocationConstraint": BUCKET_REGION}
    )
    sample.upload(client, name)
    return name


@pytest.fixture
def proxy(s3_server: LocalS3) -> Iterator[FaultProxy]:
    with fault_proxy(s3_server.endpoint_url) as running:
        yield running


def urls_of(report: Any) -> list[str]:
    raws = [raw for f in report.productset_files for raw in Path(f).read_bytes().splitlines()]
    lines = [orjson.loads(raw) for raw in raws]
    return [f["originalSource"] for line in lines for f in line["input"].get("files", [])]


@pytest.mark.parametrize("get_client", ["direct", "httpx", "boto3"])
@pytest.mark.fault_matrix(
    area="S3",
    fault="AWS_REGION is not the bucket's region (S3 refuses every request signed for it: 400,"
    " x-amz-bucket-region)",
    outcome="one HeadBucket learns the region before anything is written; every request and"
    " every presigned URL is signed for the bucket's region; the link check passes; build-report"
    " names both regions",
)
def test_a_bucket_in_another_region_is_followed_with_one_head_bucket(
    make_settings: MakeSettings,
    proxy: FaultProxy,
    eu_bucket: str,
    sample: SampleData,
    tmp_path: Path,
    get_client: str,
) -> None:
    proxy.refuse = refuse_other_regions
    settings: Settings = make_settings(
        catalog=str(sample.write_csv(tmp_path / "nav_items.csv")),
        aws_s3_bucket=eu_bucket,
        aws_endpoint_url_s3=proxy.url,
        aws_region="us-east-1",
        s3_get_client=get_client,
    )
    report = run_build(settings).report

    assert proxy.requests["HEAD"] == 1  # HeadBucket, answered 400 with the region: no redirect
    assert sum(proxy.refused.values()) == 1  # that one answer, nothing after it
    assert report.bucket_region == BUCKET_REGION
    assert report.signing_region == BUCKET_REGION
    assert report.fast_path_fallbacks == {}
    assert report.link_check is not None and report.link_check.status == 206
    urls = urls_of(report)
    assert urls and report.images_accepted == len(set(urls))
    for url in urls:
        credential = parse_qs(urlsplit(url).query)["X-Amz-Credential"][0]
        assert credential.split("/")[2] == BUCKET_REGION
    assert not report.groups_deferred
    account(settings, report, sample)


@pytest.mark.fault_matrix(
    area="S3",
    fault="every presigned GET refused with a code only boto3 gets past"
    " (400 AuthorizationQueryParametersError)",
    outcome="each GET and LIST made again with boto3; the fallbacks are counted by code in"
    " build-report.json and named in the build's output; every row as without the fault",
)
def test_fast_path_fallbacks_to_boto3_are_counted_and_named(
    make_settings: MakeSettings,
    proxy: FaultProxy,
    eu_bucket: str,
    sample: SampleData,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def refuse_presigned_reads(request: Request) -> Refusal | None:
        if "X-Amz-Credential" in request.query and request.headers.get("range") != "bytes=0-0":
            return Refusal(400, "AuthorizationQueryParametersError")
        return None

    proxy.refuse = refuse_presigned_reads
    settings: Settings = make_settings(
        catalog=str(sample.write_csv(tmp_path / "nav_items.csv")),
        aws_s3_bucket=eu_bucket,
        aws_endpoint_url_s3=proxy.url,
        aws_region=BUCKET_REGION,
    )
    result = run_build(settings)
    report = result.report
    fallbacks = report.fast_path_fallbacks
    assert set(fallbacks) == {"AuthorizationQueryParametersError"}
    assert (
        fallbacks["AuthorizationQueryParametersError"]
        == proxy.refused["GET"] + proxy.refused["LIST"]
    )
    assert report.s3_requests["GetObject"] >= proxy.refused["GET"] > 0
    assert not report.groups_deferred
    account(settings, report, sample)
    print_build_summary(report, result.report_path)
    out = capsys.readouterr()
    assert "fell back from the fast path to boto3" in out.err + out.out
    assert "AuthorizationQueryParametersError" in out.err + out.out


@pytest.mark.fault_matrix(
    area="S3",
    fault="S3 refuses the presigned URLs the build writes (403 SignatureDoesNotMatch on the"
    " link check) while the build's own reads work",
    outcome="build fails with one line (ConfigError, exit 2) naming the answer, no secret, no"
    " output written",
)
def test_a_refused_link_fails_the_build_before_it_reports_success(
    make_settings: MakeSettings,
    proxy: FaultProxy,
    eu_bucket: str,
    sample: SampleData,
    tmp_path: Path,
) -> None:
    def refuse_link_check(request: Request) -> Refusal | None:
        if request.headers.get("range") == "bytes=0-0":
            return Refusal(403, "SignatureDoesNotMatch")
        return None

    proxy.refuse = refuse_link_check
    settings: Settings = make_settings(
        catalog=str(sample.write_csv(tmp_path / "nav_items.csv")),
        aws_s3_bucket=eu_bucket,
        aws_endpoint_url_s3=proxy.url,
        aws_region=BUCKET_REGION,
    )
    with pytest.raises(ConfigError) as caught:
        run_build(settings)
    message = str(caught.value)
    assert "HTTP 403 SignatureDoesNotMatch" in message and "\n" not in message
    assert "X-Amz-" not in message and secrets_in([], message) == []
    assert proxy.refused["GET"] == 1
    assert not (settings.output_dir / "plan.jsonl").exists()
    assert not (settings.output_dir / "build-report.json").exists()


@pytest.mark.fault_matrix(
    area="S3",
    fault="nothing answers at the S3 address (AWS_ENDPOINT_URL_S3 wrong, or S3 down)",
    outcome="build stops at the region check with one line naming the address, before any"
    " listing retries; nothing written",
)
def test_an_unreachable_s3_address_is_named_at_once(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    import socket

    from bulkimg.errors import S3Error
    from bulkimg.run.build import run_build

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    catalog = tmp_path / "cat.csv"
    catalog.write_text("No_,Image_SKU,Web_Product_Group_ID,Description\n1,820020,G-1,Ring\n")
    settings = make_settings(
        catalog=str(catalog), aws_s3_bucket="bk", aws_endpoint_url_s3=f"http://127.0.0.1:{port}"
    )
    with pytest.raises(S3Error) as caught:
        run_build(settings)
    assert f"http://127.0.0.1:{port}" in str(caught.value) and "\n" not in str(caught.value)
    assert not (settings.output_dir / "plan.jsonl").exists()


@pytest.fixture(scope="module")
def us_bucket(s3_server: LocalS3, sample: SampleData) -> str:
    """The sample in a bucket of us-east-1 (no LocationConstraint, as S3 makes it)."""
    name = f"us-{uuid.uuid4().hex[:8]}"
    client = s3_server.client()
    client.create_bucket(Bucket=name)
    sample.upload(client, name)
    return name


def credential_regions(text: str) -> list[str]:
    """The region of every X-Amz-Credential in `text` (URLs raw, percent- or HTML-encoded)."""
    found = re.findall(r"X-Amz-Credential=([^&\"'\s<>]+)", text)
    return [unquote(credential).split("/")[2] for credential in found]


@pytest.mark.fault_matrix(
    area="S3",
    fault="AWS_REGION is not the bucket's region, against moto's server as it answers (no proxy):"
    " a bucket of eu-west-1 with AWS_REGION=us-east-1, and one of us-east-1 with"
    " AWS_REGION=eu-west-1 (moto names the region, 200 x-amz-bucket-region, and accepts a URL"
    " signed for any region)",
    outcome="`bulkimg build` exits 0 and names the bucket's region; every presigned URL it wrote"
    " (productSet lines, preview) and its link check are signed for that region; `check` and the"
    " commands after the build sign for it too",
)
@pytest.mark.parametrize(
    ("bucket_region", "aws_region"),
    [("eu-west-1", "us-east-1"), ("us-east-1", "eu-west-1")],
    ids=["eu-bucket", "us-bucket"],
)
def test_the_cli_build_follows_the_bucket_region_moto_s_server_names(
    s3_server: LocalS3,
    eu_bucket: str,
    us_bucket: str,
    sample: SampleData,
    make_settings: MakeSettings,
    tmp_path: Path,
    bucket_region: str,
    aws_region: str,
) -> None:
    from click.testing import CliRunner

    from bulkimg.cli import cli
    from bulkimg.run.ledger import signing_settings
    from bulkimg.run.preflight import run_checks
    from tests.helpers.env import CANARY_KEY_ID, CANARY_SECRET
    from tests.helpers.preview import page_cards

    bucket = eu_bucket if bucket_region == BUCKET_REGION else us_bucket
    # What moto's server answers: the bucket's region to a HeadBucket signed for another one,
    # and 200 to a presigned GET signed for the wrong region (it checks none: only the URLs
    # written can show which region bulkimg signed for).
    wrong = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        region_name=aws_region,
        aws_access_key_id=CANARY_KEY_ID,
        aws_secret_access_key=CANARY_SECRET,
        config=Config(signature_version="s3v4"),  # presigned as bulkimg signs (SigV4)
    )
    head = wrong.head_bucket(Bucket=bucket)["ResponseMetadata"]
    assert (head["HTTPStatusCode"], head["HTTPHeaders"]["x-amz-bucket-region"]) == (
        200,
        bucket_region,
    )
    key = wrong.list_objects_v2(Bucket=bucket, MaxKeys=1)["Contents"][0]["Key"]
    url = wrong.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
    assert credential_regions(url) == [aws_region]
    with urllib.request.urlopen(url, timeout=10) as answer:  # loopback
        assert answer.status == 200

    out = tmp_path / "output"
    env = {
        "BULKIMG_CATALOG": str(sample.write_csv(tmp_path / "nav_items.csv")),
        "AWS_S3_BUCKET": bucket,
        "AWS_ENDPOINT_URL_S3": s3_server.endpoint_url,
        "AWS_REGION": aws_region,
        "AWS_ACCESS_KEY_ID": CANARY_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": CANARY_SECRET,
        "BULKIMG_OUTPUT_DIR": str(out),
        "BULKIMG_LOGS_DIR": str(tmp_path / "logs"),
        "BULKIMG_CACHE_DIR": str(tmp_path / "cache"),
        "BULKIMG_STATE_FILE": str(tmp_path / "state.sqlite"),
    }
    result = CliRunner().invoke(cli, ["build", "--all"], env=env)
    assert result.exit_code == 0, result.output
    row = re.search(r"S3 bucket region\W+(.*?)\s*│", result.output)  # the summary's row
    assert row is not None and row[1] == bucket_region, result.output  # not "(signed for ...)"
    assert "fell back" not in result.output

    report = orjson.loads((out / "build-report.json").read_bytes())
    assert (report["bucket_region"], report["signing_region"]) == (bucket_region, bucket_region)
    assert report["link_check"]["status"] == 206
    lines = [Path(f).read_text() for f in report["productset_files"]]
    in_lines = [r for text in lines for r in credential_regions(text)]
    assert len(in_lines) == report["images_accepted"] > 0
    cards = page_cards((out / "preview.html").read_text())
    in_preview = credential_regions(orjson.dumps(cards).decode())
    assert in_preview
    assert set(in_lines) == set(in_preview) == {bucket_region}

    settings: Settings = make_settings(
        aws_s3_bucket=bucket,
        aws_endpoint_url_s3=s3_server.endpoint_url,
        aws_region=aws_region,
        aws_session_token=None,
        output_dir=out,
    )
    assert signing_settings(settings).aws_region == bucket_region  # submit, retry, preview
    checked = {c.name: c for c in run_checks(settings)}["S3 bucket"]
    assert checked.ok
    assert f"region {bucket_region}, signed for {bucket_region}" in checked.detail
