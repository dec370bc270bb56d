"""The benchmark keeps working (a tiny run; its numbers are not asserted) and its helpers."""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from botocore.utils import parse_timestamp

from bulkimg.s3.client import fast_timestamp

pytestmark = pytest.mark.slow  # every test runs the benchmark as a process

REPO = Path(__file__).resolve().parents[1]
REQUIRED_KEYS = {
    "cold_speedup",
    "warm_speedup",
    "bulkimg_s3_requests",
    "floor_s3_requests",
    "baseline_s3_requests",
    "shopify_calls_bulkimg",
    "shopify_calls_baseline",
    "shopify_calls_bulkimg_warm",
    "peak_rss_mb_20k",
    "peak_rss_mb_100k",
    "scale",
    "latency_ms",
}


def test_small_benchmark_run_writes_every_required_key(tmp_path: Path) -> None:
    out = tmp_path / "results"
    args = [sys.executable, "-m", "bench", "--scale", "0.001", "--latency-ms", "0"]
    args += ["--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    args += ["--submit-groups", "5", "--poll-interval", "0.1", "--baseline-warm", "skip"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results: dict[str, Any] = orjson.loads((out / "latest.json").read_bytes())
    assert not REQUIRED_KEYS - results.keys()
    assert isinstance(results["shopify_calls_bulkimg_warm"], int)  # a second nightly run
    assert results["shopify_warm_night"]["exit_code"] == 0
    assert "| bulkimg |" in (out / "latest.md").read_text()
    assert not (REPO / "output" / "state.sqlite").exists()  # nothing written into the repo

    # A later full-scale RSS file is folded into the same run's report without measuring again.
    rss = {"peak_rss_mb_20k": 123.4, "peak_rss_mb_100k": 234.5, "command": "c", "generated_at": "t"}
    rss["peak_rss_variants"] = {"20k": 20_000, "100k": 100_000}
    (out / "rss-scale1.json").write_bytes(orjson.dumps(rss))
    again = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "report", "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    rerendered: dict[str, Any] = orjson.loads((out / "latest.json").read_bytes())
    assert rerendered["peak_rss_mb_100k"] == 234.5
    assert rerendered["goals"]["rss_under_300mb_at_100k"] is True
    assert rerendered["peak_rss_this_scale"]["peak_rss_mb_20k"] == results["peak_rss_mb_20k"]
    assert rerendered["cold_speedup"] == results["cold_speedup"]
    assert "234 MB" in (out / "latest.md").read_text()


def test_get_clients_benchmark_reads_with_every_get_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.getclients import main

    main(["--scale", "0.001", "--requests", "40", "--cache-dir", str(tmp_path)])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["direct", "httpx", "boto3"]
    assert all("ms per GET" in line for line in lines[1:])


@pytest.mark.parametrize(
    "value",
    [
        "2026-01-02T03:04:05.000Z",
        "2026-01-02T03:04:05Z",
        "2026-01-02T03:04:05+02:00",
        "Wed, 25 Nov 2026 17:06:17 GMT",
        "2026-01-02T03:04:05",
        "1700000000",
        1700000000,
    ],
)
def test_fast_timestamps_equal_botocores(value: Any) -> None:
    assert fast_timestamp(value) == parse_timestamp(value)


def test_floor_counts_one_get_per_candidate_and_the_fewest_listing_pages(tmp_path: Path) -> None:
    from bench.world import ensure_world, floor_for

    world = ensure_world(tmp_path, 0.001, 7, say=lambda _: None)
    skus = world.catalog_image_skus(world.catalog)
    floor = floor_for(world, skus)
    candidates = {
        (o.image_sku, o.key.rsplit("/", 1)[1].split("-")[1])
        for o in world.objects()
        if o.kind in ("image", "too_small") and o.image_sku in skus
    }
    assert floor.candidate_gets == len(candidates)
    assert 0 < floor.list_pages <= floor.folders_needed
    assert floor_for(world, skus, changed_keys=set()).candidate_gets == 0


def brute_force_pages(keys: list[str], folders: set[str], page: int) -> int:
    """The fewest pages that show every folder whole, trying every set of page starts.

    A page starting at position s (StartAfter = key s-1) shows that nothing lies between key i-1
    and key i ("gap i") for s <= i < s + page, and gap len(keys) (the end) when it reaches it.
    A folder of keys [first, past) is seen whole when gaps first..past are all shown.
    """
    count = len(keys)
    spans = [
        (sum(k < f for k in keys), sum(k < f or k.startswith(f) for k in keys)) for f in folders
    ]

    def shown(starts: tuple[int, ...], gap: int) -> bool:
        return any(s <= gap < s + page or (gap == count <= s + page) for s in starts if s <= gap)

    for size in range(1, count + 2):
        for starts in itertools.combinations(range(count + 1), size):
            if all(shown(starts, g) for first, past in spans for g in range(first, past + 1)):
                return size
    raise AssertionError("unreachable")


@pytest.mark.parametrize("seed", range(40))
def test_skip_scan_floor_is_the_fewest_pages_that_show_every_needed_folder(seed: int) -> None:
    from bench.world import skip_scan_pages

    rng = random.Random(seed)
    tops = [f"p/{a}/" for a in "abcd"]
    keys = sorted({f"{rng.choice(tops)}{rng.randrange(30):02d}" for _ in range(rng.randint(0, 8))})
    folders = set(rng.sample(tops, rng.randint(1, 4)))
    page = rng.randint(1, 3)
    assert skip_scan_pages(keys, folders, page) == brute_force_pages(keys, folders, page)


def test_bench_s3_index_answers_start_after_and_continuation_like_s3(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3
    from moto import mock_aws
    from moto.s3.models import S3Backend

    from bench.s3server import _index_listing

    for name in ("list_objects", "list_objects_v2", "put_object", "delete_object"):
        monkeypatch.setattr(S3Backend, name, getattr(S3Backend, name))  # restored afterwards
    _index_listing()
    keys = sorted(
        [f"m/{a}/{b}/k{n}" for a in ("10", "11", "12") for b in ("01", "02") for n in range(4)]
        + ["m/11", "m/11/", "m/11/01/sub/x", "m/110/01/x", "n/x"]
    )
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bench-listing")
        for key in keys:
            s3.put_object(Bucket="bench-listing", Key=key, Body=b"x")
        for prefix, after, size in [
            ("m/", "m/11/01", 5), ("m/1", "m/10/02/k3", 3), ("m/11", "", 4),
            ("m/", "m/12/02/k3", 2), ("m/11/01/", "m/", 10), ("", "m/110", 1000),
        ]:  # fmt: skip
            expected = [k for k in keys if k.startswith(prefix) and k > after]
            got: list[str] = []
            page = s3.list_objects_v2(
                Bucket="bench-listing", Prefix=prefix, StartAfter=after, MaxKeys=size
            )
            while True:
                got += [o["Key"] for o in page.get("Contents", [])]
                assert len(page.get("Contents", [])) <= size
                if not page["IsTruncated"]:
                    break
                page = s3.list_objects_v2(
                    Bucket="bench-listing", Prefix=prefix, MaxKeys=size,
                    ContinuationToken=page["NextContinuationToken"],
                )  # fmt: skip
            assert got == expected, (prefix, after)
        folder = s3.list_objects_v2(Bucket="bench-listing", Prefix="m/11/", Delimiter="/")
        assert [p["Prefix"] for p in folder["CommonPrefixes"]] == ["m/11/01/", "m/11/02/"]


def test_bench_fast_path_answers_gets_and_heads_as_moto_does() -> None:
    """The bench server's GET/HEAD fast path: same status, bytes and headers as moto itself."""
    import threading

    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
    from moto.moto_server.werkzeug_app import create_backend_app
    from werkzeug.serving import make_server

    from bench.s3server import ObjectFastPath

    moto_app = create_backend_app("s3")
    fast_path = ObjectFastPath(moto_app)
    servers = [make_server("127.0.0.1", 0, app, threaded=True) for app in (moto_app, fast_path)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    clients = [
        boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{server.port}",
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=Config(retries={"max_attempts": 1}),
        )
        for server in servers
    ]
    try:
        s3 = clients[0]
        s3.create_bucket(Bucket="bench-fast-path")
        body = bytes(range(256)) * 40
        key = "sorted-media/11/02/19/1102192-1a-1 +é%41.jpg"
        s3.put_object(Bucket="bench-fast-path", Key=key, Body=body, ContentType="image/jpeg")
        etag = s3.head_object(Bucket="bench-fast-path", Key=key)["ETag"]
        requests: list[dict[str, Any]] = [
            {}, {"Range": "bytes=0-65535"}, {"Range": "bytes=100-199"}, {"Range": "bytes=10000-"},
            {"Range": "bytes=0-99", "IfMatch": etag}, {"Range": "bytes=0-99", "IfMatch": '"0"'},
            {"Range": "bytes=20000-20099"},
        ]  # fmt: skip
        fields = ("ContentLength", "ContentRange", "ETag", "ContentType", "LastModified")

        def answer(client: Any, call: str, **extra: Any) -> Any:
            try:
                got = getattr(client, call)(Bucket="bench-fast-path", **extra)
            except ClientError as exc:
                return exc.response["Error"]["Code"]
            data = got["Body"].read() if "Body" in got else None
            return data, {f: got.get(f) for f in fields}

        for extra in requests:
            moto_answer, fast_answer = (answer(c, "get_object", Key=key, **extra) for c in clients)
            assert fast_answer == moto_answer, extra
        heads = [answer(c, "head_object", Key=key) for c in clients]
        assert heads[0] == heads[1]
        missing = [answer(c, "get_object", Key=key + "x") for c in clients]
        assert missing == ["NoSuchKey", "NoSuchKey"]
        assert fast_path.answered == 6  # 5 GETs and the HEAD; If-Match failed, past the end: moto

        for n, name in enumerate(["a b", "a+b", "a%b", "é", "z", *(f"k{i:02d}" for i in range(9))]):
            s3.put_object(Bucket="bench-fast-path", Key=f"sorted-media/{n % 3}/{name}", Body=b"x")
        page_fields = ("IsTruncated", "KeyCount", "Prefix", "StartAfter", "MaxKeys", "Name")

        def pages(client: Any, **query: Any) -> list[Any]:
            got, token = [], None
            while True:
                more = {"ContinuationToken": token} if token else {}
                page = client.list_objects_v2(Bucket="bench-fast-path", **query, **more)
                got.append(({f: page.get(f) for f in page_fields}, page.get("Contents")))
                token = page.get("NextContinuationToken")
                if not token:
                    return got

        for query in [
            {"Prefix": "sorted-media/"}, {"Prefix": "sorted-media/", "MaxKeys": 4},
            {"Prefix": "sorted-media/1/", "StartAfter": "sorted-media/1/a", "MaxKeys": 2},
            {"Prefix": "sorted-media/", "StartAfter": "sorted-media/2/k", "MaxKeys": 1000},
            {"Prefix": "nothing/"}, {"Prefix": "sorted-media/0/", "Delimiter": "/"},
        ]:  # fmt: skip
            before = fast_path.answered
            assert pages(clients[1], **query) == pages(clients[0], **query), query
            assert fast_path.answered > before or "Delimiter" in query
    finally:
        for server in servers:
            server.shutdown()


@pytest.mark.slow
def test_first_night_benchmark_changes_only_images_and_the_second_night_sends_nothing(
    tmp_path: Path,
) -> None:
    out = tmp_path / "results"
    args = [sys.executable, "-m", "bench", "--only", "first-night", "--scale", "0.001"]
    args += ["--latency-ms", "0", "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result: dict[str, Any] = orjson.loads((out / "first-night-scale0.001.json").read_bytes())
    first, second = result["first_night"], result["second_night"]
    assert result["changes_beyond_images"] == 0, result["changes_beyond_images_sample"]
    assert first["exit_code"] == 0 and first["images_adopted"] > 0
    assert first["images_uploaded"] < result["media_seeded"]  # not the whole catalog again
    assert second["exit_code"] == 0 and second["lines_sent"] == second["images_uploaded"] == 0
