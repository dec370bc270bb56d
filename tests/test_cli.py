"""The `bulkimg` command as a user runs it: real processes, moto's S3 server over loopback."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bulkimg.demo.run import LocalS3
from bulkimg.demo.samples import SampleData
from tests.helpers.cli import bulkimg, env_for
from tests.helpers.env import CANARY_SECRET, secrets_in
from tests.helpers.preview import page_cards


@pytest.fixture
def server_bucket(s3_server: LocalS3, sample: SampleData, request: pytest.FixtureRequest) -> str:
    bucket = "cli-" + request.node.name.replace("_", "-").lower()[:40]
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    sample.upload(client, bucket)
    return bucket


@pytest.mark.slow
@pytest.mark.fault_matrix(
    area="Operator",
    fault="`bulkimg demo` run twice in a row in one checkout (it used to land in the real"
    " output/: the second refused the shop, the third was stuck on an unfinished run)",
    outcome="both exit 0 with the same outcome; every file under output/demo/ (its own output"
    " folder, state file and logs); nothing in output/ or logs/ a real run would find",
)
def test_demo_runs_build_submit_and_retry_with_no_credentials(tmp_path: Path) -> None:
    demo = tmp_path / "output" / "demo"
    for _ in range(2):  # repeatable: each run starts from an empty demo folder and a new shop
        result = bulkimg(tmp_path, "demo")
        assert result.returncode == 0, result.stderr
        assert "wrote output/demo/productset.jsonl" in result.stdout
        report = orjson.loads((demo / "build-report.json").read_bytes())
        assert report["groups_written"] == report["groups"] > 20
        assert list((demo / "logs").glob("missing_images_*.log"))
        # The first submit fails one image on purpose; the retry fixes it.
        assert len(list((demo / "logs").glob("image_upload_failures_*.log"))) == 2
        assert (demo / "failures.jsonl").read_bytes() == b""
        manifest = [orjson.loads(x) for x in (demo / "manifest.jsonl").read_bytes().split()]
        assert len(manifest) == report["groups"]
        assert {e["status"] for e in manifest} == {"done", "missing"}
        lines = result.stdout.strip().splitlines()
        assert lines[-2].startswith("groups: done: ")
        assert lines[-1] == "preview: output/demo/preview.html"
    # Nothing where a real run looks: no run, state, plan or log outside the demo's folder.
    assert sorted(p.name for p in (tmp_path / "output").iterdir()) == ["demo"]
    assert not (tmp_path / "logs").exists()
    # The page works offline: its thumbnails are embedded.
    cards = page_cards((demo / "preview.html").read_text())
    srcs = [i["src"] for c in cards for i in c["images"]]
    assert srcs and all(s.startswith("data:image/jpeg;base64,") for s in srcs)


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    result = bulkimg(tmp_path, "demo", "--workdir", "mine")
    assert result.returncode == 2
    assert "mine is not empty and not a demo folder" in result.stderr
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_build_from_environment_over_loopback_s3(
    tmp_path: Path, s3_server: LocalS3, server_bucket: str, sample: SampleData
) -> None:
    catalog = sample.write_csv(tmp_path / "nav_items.csv")
    env = env_for(s3_server, server_bucket, catalog)
    result = bulkimg(tmp_path, "build", "--group-ids", "LGD-101792", "GID-100288", env=env)
    assert result.returncode == 0, result.stderr
    plans = [orjson.loads(x) for x in (tmp_path / "output/plan.jsonl").read_bytes().splitlines()]
    assert [p["group_id"] for p in plans] == ["GID-100288", "LGD-101792"]
    # Secrets appear nowhere but inside the presigned URLs Shopify must fetch.
    leaks = secrets_in(
        [tmp_path / "logs", tmp_path / "output/plan.jsonl"], result.stdout + result.stderr
    )
    assert leaks == []
    assert CANARY_SECRET not in (tmp_path / "output/productset.jsonl").read_text()


def test_presigned_source_urls_fetch_the_image(
    tmp_path: Path, s3_server: LocalS3, server_bucket: str, sample: SampleData
) -> None:
    import httpx

    catalog = sample.write_csv(tmp_path / "nav_items.csv")
    env = env_for(s3_server, server_bucket, catalog)
    assert bulkimg(tmp_path, "build", "--group-ids", "LGD-101792", env=env).returncode == 0
    (line,) = [
        orjson.loads(x) for x in (tmp_path / "output/productset.jsonl").read_bytes().splitlines()
    ]
    first = line["input"]["files"][0]
    response = httpx.get(first["originalSource"])
    assert response.status_code == 200
    key = next(k for k in sample.objects if k.endswith(first["filename"].split("--")[0] + ".jpg"))
    assert response.content == sample.objects[key]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["build"], "give either --all or --group-ids"),
        (["build", "--all", "--group-ids", "X"], "give either --all or --group-ids"),
        (["build", "LGD-1"], "did you mean --group-ids"),
        (["build", "--all"], "missing setting BULKIMG_CATALOG"),
        (["build", "--all", "--catalog", "x.csv"], "missing setting AWS_S3_BUCKET"),
        (
            ["build", "--all", "--catalog", "x.csv", "--bucket", "b"],
            "catalog file not found: x.csv",
        ),
        (["build", "--all", "--workers", "0", "--catalog", "x.csv"], "BULKIMG_S3_WORKERS"),
        (["plan"], "run `bulkimg build` first"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = bulkimg(tmp_path, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.strip()]) <= 3


@pytest.mark.fault_matrix(
    area="Secrets",
    fault="S3 refuses the bucket (NoSuchBucket) with canary credentials",
    outcome="one line, exit 2, no traceback, no credential in stdout/stderr",
)
def test_wrong_credentials_are_one_line_without_the_secret(
    tmp_path: Path, s3_server: LocalS3, server_bucket: str, sample: SampleData
) -> None:
    catalog = sample.write_csv(tmp_path / "nav_items.csv")
    env = env_for(s3_server, "no-such-bucket-here", catalog)
    result = bulkimg(tmp_path, "build", "--all", env=env)
    assert result.returncode == 2
    assert "NoSuchBucket" in result.stderr and "Traceback" not in result.stderr
    assert secrets_in([], result.stdout + result.stderr) == []
    assert not (tmp_path / "output" / "productset.jsonl").exists()


def test_plan_command_shows_the_groups(
    tmp_path: Path, s3_server: LocalS3, server_bucket: str, sample: SampleData
) -> None:
    catalog = sample.write_csv(tmp_path / "nav_items.csv")
    env = env_for(s3_server, server_bucket, catalog)
    assert bulkimg(tmp_path, "build", "--all", env=env).returncode == 0
    result = bulkimg(tmp_path, "plan")
    assert result.returncode == 0
    assert "lgd-101792" in result.stdout


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["submit"], {}, "missing setting SHOPIFY_SHOP"),
        (["submit"], {"SHOPIFY_SHOP": "x"}, "missing setting SHOPIFY_ACCESS_TOKEN"),
        (
            ["submit", "--wait"],
            {"SHOPIFY_SHOP": "http://127.0.0.1:9", "SHOPIFY_ACCESS_TOKEN": "t"},
            "run `bulkimg build` first",
        ),
        (["status"], {}, "nothing has been submitted"),
        (["retry", "nope.jsonl"], {"AWS_S3_BUCKET": "b"}, "nope.jsonl not found"),
    ],
)
def test_submit_status_and_retry_user_errors_are_one_line_and_exit_2(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    result = bulkimg(tmp_path, *args, env=env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_access_token_is_refused_in_the_settings_file(tmp_path: Path) -> None:
    (tmp_path / "bulkimg.toml").write_text('shopify_access_token = "shpat_x"\n')
    result = bulkimg(tmp_path, "submit")
    assert result.returncode == 2
    assert "may only come from the environment" in result.stderr
    assert "shpat_x" not in result.stderr


HEADER = "No_,Image_SKU,Web_Product_Group_ID,Description\n"
ROW = "1,1102192,LGD-101792,Ring\n"


@pytest.mark.fault_matrix(
    area="Input",
    fault="a build that can do nothing useful: an empty catalog (header only), group ids given on"
    " the command line that are not in the catalog, a title column (BULKIMG_COLUMN_TITLE) the"
    " catalog does not have",
    outcome="one line naming the catalog, the ids or the column, exit 2, no traceback, before any"
    " S3 request; nothing written",
)
@pytest.mark.parametrize(
    ("rows", "args", "env", "message"),
    [
        ("", ["--all"], {}, "the catalog nav_items.csv has no rows: nothing to build"),
        (
            ROW,
            ["--group-ids", "LGD-101792", "NOPE-1", "NOPE-2"],
            {},
            "group id not in the catalog nav_items.csv: NOPE-1, NOPE-2; nothing was built",
        ),
        (
            ROW,
            ["--all"],
            {"BULKIMG_COLUMN_TITLE": "Descr"},
            "catalog file nav_items.csv has no column 'Descr' (BULKIMG_COLUMN_TITLE)",
        ),
    ],
    ids=["empty", "unknown-group", "title-column"],
)
def test_a_build_that_can_do_nothing_useful_is_one_line_and_exit_2(
    tmp_path: Path, rows: str, args: list[str], env: dict[str, str], message: str
) -> None:
    (tmp_path / "nav_items.csv").write_text(HEADER + rows)
    # No S3 answers at this address: the refusal comes before any request.
    env = {"BULKIMG_CATALOG": "nav_items.csv", "AWS_S3_BUCKET": "b",
           "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9", **env}  # fmt: skip
    result = bulkimg(tmp_path, "build", *args, env=env)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("bulkimg:")]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "output" / "plan.jsonl").exists()


def test_an_empty_title_column_setting_titles_products_by_group_id(
    tmp_path: Path, s3_server: LocalS3, server_bucket: str, sample: SampleData
) -> None:
    catalog = sample.write_csv(tmp_path / "nav_items.csv")
    env = env_for(s3_server, server_bucket, catalog) | {"BULKIMG_COLUMN_TITLE": ""}
    result = bulkimg(tmp_path, "build", "--group-ids", "LGD-101792", env=env)
    assert result.returncode == 0, result.stderr
    (line,) = (tmp_path / "output/productset.jsonl").read_bytes().splitlines()
    assert orjson.loads(line)["input"]["title"] == "LGD-101792"


@pytest.mark.fault_matrix(
    area="Operator",
    fault="`--log-json` (cron, log shippers): a build that works, then one that fails (a missing"
    " setting), then a usage error",
    outcome="stdout empty; every stderr line a JSON object (progress, the summary table, each"
    " file written, the error); the last one the outcome: command, exit code and counts",
)
def test_log_json_emits_only_json_lines_ending_with_the_outcome(
    tmp_path: Path, s3_server: LocalS3, server_bucket: str, sample: SampleData
) -> None:
    catalog = sample.write_csv(tmp_path / "nav_items.csv")
    env = env_for(s3_server, server_bucket, catalog)

    def events(*args: str, env: dict[str, str]) -> tuple[int, list[dict[str, object]]]:
        result = bulkimg(tmp_path, "--log-json", *args, env=env)
        assert result.stdout == ""
        return result.returncode, [orjson.loads(line) for line in result.stderr.splitlines()]

    code, built = events("build", "--group-ids", "LGD-101792", env=env)
    assert code == 0
    kinds = [e["event"] for e in built]
    assert {"info", "summary", "outcome"} <= set(kinds) and kinds[-1] == "outcome"
    outcome = built[-1]
    assert (outcome["command"], outcome["exit_code"]) == ("build", 0)
    assert outcome["build"] == {
        "groups_written": 1, "groups_deferred": 0, "variants": 3, "image_skus": 1,
        "images_accepted": 3, "row_problems": 0,
    }  # fmt: skip
    assert "output/productset.jsonl" in str(outcome["files"])

    code, failed = events("build", "--all", env={})
    assert code == 2
    assert [e["event"] for e in failed] == ["error", "outcome"]
    assert "missing setting BULKIMG_CATALOG" in str(failed[0]["message"])
    assert failed[1]["exit_code"] == 2

    code, usage = events("build", env={})
    assert (code, [e["event"] for e in usage]) == (2, ["error", "outcome"])
    assert "give either --all or --group-ids" in str(usage[0]["message"])


def test_the_library_surface_names_every_stage_and_each_name_resolves() -> None:
    import bulkimg

    assert sorted(bulkimg.__all__) == sorted(bulkimg._WHERE)
    for name in bulkimg.__all__:
        assert getattr(bulkimg, name).__name__ == name
    with pytest.raises(AttributeError):
        _ = bulkimg.not_a_name  # type: ignore[attr-defined]
