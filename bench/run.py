"""`python -m bench`: bulkimg against the spec's design on a synthetic catalog, same run.

Steps (each printed with its time): make or reuse the world; start moto's S3 with the latency;
bulkimg build cold (empty header cache), warm (no S3 change), baseline cold and warm, a cold
build of 20% of the catalog (peak RSS), a submit to the sandbox shop and a second nightly run
with no change (Shopify calls), then 1% of the objects replaced and a third bulkimg build.
Writes `<out>/latest.json` and `<out>/latest.md`.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import orjson
from botocore.config import Config

from bench import shopify
from bench.measure import BuildRun, ProcessRun, base_env, run_build, run_measured
from bench.report import markdown
from bench.s3server import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, running_server
from bench.world import CANDIDATE_KINDS, Floor, World, ensure_world, floor_for

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
GOALS = {"cold_speedup": 10.0, "warm_speedup": 50.0, "s3_over_floor": 1.10, "rss_mb_100k": 300.0}


class Progress:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.t0:7.1f} s] {message}", flush=True)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    say = Progress()
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.only == "rss":
        rss = run_rss(args, say)
        path = out / f"rss-scale{args.scale:g}.json"
        path.write_bytes(orjson.dumps(rss, option=orjson.OPT_INDENT_2) + b"\n")
        say(f"wrote {path}")
        return
    if args.only == "first-night":
        result = run_first_night(args, say)
        path = out / f"first-night-scale{args.scale:g}.json"
        path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
        say(f"wrote {path}")
        return
    if args.only == "report":
        results = orjson.loads((out / "latest.json").read_bytes())
        results.update(results.pop("peak_rss_this_scale", {}))  # as that run measured them
    else:
        results = run(args, say)
    full_scale = out / "rss-scale1.json"
    if full_scale.is_file() and results["scale"] != 1:
        _use_full_scale_rss(results, orjson.loads(full_scale.read_bytes()))
    (out / "latest.json").write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2) + b"\n")
    (out / "latest.md").write_text(markdown(results), encoding="utf-8")
    say(f"wrote {out / 'latest.json'} and {out / 'latest.md'}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: 100,000 variants")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--latency-ms", type=float, default=20.0, help="per S3 request")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--cache-dir", type=Path, default=BENCH_DIR / ".cache", help="worlds")
    parser.add_argument(
        "--submit-groups", type=int, default=500, help="groups submitted to the sandbox"
    )
    parser.add_argument("--poll-interval", type=float, default=None, help="submit polls (s)")
    parser.add_argument(
        "--baseline-warm",
        choices=("measure", "skip"),
        default="measure",
        help="run the baseline a second time (skip: its warm run is reported as its cold run:"
        " the design keeps no state between runs)",
    )
    parser.add_argument("--changed-share", type=float, default=0.01)
    parser.add_argument(
        "--only",
        choices=("all", "rss", "report", "first-night"),
        default="all",
        help="rss: only the two cold builds that measure peak RSS (20%% and 100%% of the"
        " catalog), written to <out>/rss-scale<scale>.json; a later run at another scale"
        " reports the scale-1 figures from that file. report: no measurement, write"
        " latest.json and latest.md again from latest.json and rss-scale1.json. first-night:"
        " a shop seeded with every product (bench/firstnight.py), then two nightly runs,"
        " written to <out>/first-night-scale<scale>.json",
    )
    return parser


def _prepare(args: argparse.Namespace, say: Callable[[str], None]) -> tuple[World, Path]:
    args.cache_dir = args.cache_dir.resolve()
    world = ensure_world(args.cache_dir, args.scale, args.seed, say)
    counts = world.counts()
    say(f"world: {counts.groups} groups, {counts.variants} variants, {counts.objects} objects")
    work = args.cache_dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.chdir(work)  # a default relative path (output/, logs/) must not land in the repo
    return world, work


def run_first_night(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    """The first night against a shop that already holds every product (bench/firstnight.py)."""
    from bench.firstnight import measure_first_night

    world, work = _prepare(args, say)
    started = datetime.now(UTC)
    with running_server(world.root, args.latency_ms / 1000, work / "s3server.log") as endpoint:
        say(f"S3 (moto) at {endpoint}, latency {args.latency_ms:g} ms")
        result = measure_first_night(endpoint, world, world.catalog, work / "first-night", say)
    command = "python -m bench --only first-night --scale " + f"{args.scale:g}"
    return {"scale": args.scale, "latency_ms": args.latency_ms, "command": command,
            "generated_at": started.isoformat(timespec="seconds"), **result}  # fmt: skip


def run_rss(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    """Peak RSS of cold builds of 20% and 100% of the catalog (nothing else)."""
    world, work = _prepare(args, say)
    small = world.subset_catalog("20pct", share=0.2)
    with running_server(world.root, args.latency_ms / 1000, work / "s3server.log") as endpoint:
        say(f"S3 (moto) at {endpoint}, latency {args.latency_ms:g} ms")
        rss_small = _build(say, "bulkimg cold, 20%", endpoint, small, work / "rss20", work / "c20")
        cold = _build(say, "bulkimg cold", endpoint, world.catalog, work / "cold", work / "c100")
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "scale": args.scale,
        "latency_ms": args.latency_ms,
        "peak_rss_mb_20k": rss_small.process.peak_rss_mb,
        "peak_rss_mb_100k": cold.process.peak_rss_mb,
        "peak_rss_variants": {
            "20k": world.variant_count(small),
            "100k": world.variant_count(world.catalog),
        },
        "builds": {
            "20pct": {**_bulkimg_run(rss_small, floor_for(world, world.catalog_image_skus(small)))},
            "100pct": {
                **_bulkimg_run(cold, floor_for(world, world.catalog_image_skus(world.catalog)))
            },
        },
    }


def _use_full_scale_rss(results: dict[str, Any], rss: dict[str, Any]) -> None:
    """Report peak RSS measured at the default scale (20,000 and 100,000 variants)."""
    results["peak_rss_this_scale"] = {
        "peak_rss_mb_20k": results["peak_rss_mb_20k"],
        "peak_rss_mb_100k": results["peak_rss_mb_100k"],
        "peak_rss_variants": results["peak_rss_variants"],
    }
    for key in ("peak_rss_mb_20k", "peak_rss_mb_100k", "peak_rss_variants"):
        results[key] = rss[key]
    results["peak_rss_source"] = f"rss-scale1.json ({rss['command']}, {rss['generated_at']})"
    results["goals"]["rss_under_300mb_at_100k"] = _rss_goal(results)


def _rss_goal(results: dict[str, Any]) -> bool | None:
    """Peak RSS under the target at 100,000 variants; None when not measured at that size."""
    if results["peak_rss_variants"]["100k"] < 100_000:
        return None
    return bool(results["peak_rss_mb_100k"] < GOALS["rss_mb_100k"])


def run(args: argparse.Namespace, say: Callable[[str], None]) -> dict[str, Any]:
    latency = args.latency_ms / 1000
    world, work = _prepare(args, say)
    full = world.catalog
    small = world.subset_catalog("20pct", share=0.2)
    submit_catalog = world.subset_catalog(f"submit{args.submit_groups}", groups=args.submit_groups)
    main_cache = work / "cache-main"
    with running_server(world.root, latency, work / "s3server.log") as endpoint:
        say(f"S3 (moto) at {endpoint}, latency {args.latency_ms:g} ms")
        cold = _build(say, "bulkimg cold", endpoint, full, work / "cold", main_cache)
        warm = _build(say, "bulkimg warm", endpoint, full, work / "warm", main_cache)
        base_cold = _baseline(say, "baseline cold", endpoint, full, work / "baseline-cold")
        if args.baseline_warm == "measure":
            base_warm = _baseline(say, "baseline warm", endpoint, full, work / "baseline-warm")
        else:
            base_warm = base_cold | {"not_measured": "same requests as cold: no state kept"}
        rss_small = _build(say, "bulkimg cold, 20%", endpoint, small, work / "rss20", work / "c20")
        say(f"submit of {args.submit_groups} groups to the sandbox shop")
        submit = shopify.measure_submit(
            endpoint, submit_catalog, work / "submit", main_cache, args.poll_interval
        )
        say(f"  {submit.total} Shopify requests in {submit.wall_seconds:.1f} s")
        night = submit.warm_night
        say(f"  night with no change: {night.total} Shopify requests in {night.wall_seconds:.1f} s")
        changed_keys = _change_objects(world, endpoint, args.changed_share, args.seed)
        say(f"replaced {len(changed_keys)} objects ({args.changed_share:.0%})")
        changed = _build(say, "bulkimg 1% changed", endpoint, full, work / "changed", main_cache)
    skus = world.catalog_image_skus(full)
    floors = {
        "cold": floor_for(world, skus),
        "warm": floor_for(world, skus, changed_keys=set()),
        "changed": floor_for(world, skus, changed_keys=changed_keys),
    }
    return _results(
        args, world, floors, {"cold": cold, "warm": warm, "changed": changed, "small": rss_small},
        {"cold": base_cold, "warm": base_warm}, submit,
    )  # fmt: skip


def _build(
    say: Callable[[str], None], label: str, endpoint: str, catalog: Path, workdir: Path, cache: Path
) -> BuildRun:
    say(f"{label}: bulkimg build --all")
    built = run_build(endpoint, catalog, workdir, cache)
    say(
        f"  {built.report['wall_seconds']} s, {sum(_requests(built.report).values())} S3 requests,"
        f" peak RSS {built.process.peak_rss_mb} MB"
    )
    return built


def _requests(report: dict[str, Any]) -> dict[str, int]:
    value = report.get("s3_requests", {})
    return {str(k): int(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _baseline(
    say: Callable[[str], None], label: str, endpoint: str, catalog: Path, workdir: Path
) -> dict[str, Any]:
    say(f"{label}: the spec's design")
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "baseline.json"
    args = [sys.executable, "-m", "bench.baseline", "--catalog", str(catalog)]
    args += ["--endpoint", endpoint, "--out", str(out)]
    process = run_measured(args, base_env(), REPO, workdir / "baseline.log")
    if process.exit_code != 0:
        tail = (workdir / "baseline.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"baseline failed ({process.exit_code}):\n{tail}")
    result: dict[str, Any] = orjson.loads(out.read_bytes())
    result["process"] = _process(process)
    say(f"  {result['wall_seconds']} s, {sum(result['s3_requests'].values())} S3 requests")
    return result


def _change_objects(world: World, endpoint: str, share: float, seed: int) -> set[str]:
    """Replace `share` of the objects with new bytes (same image, one byte more: a new ETag)."""
    rng = random.Random(seed + 1)
    objects = list(world.objects())
    chosen = rng.sample(objects, max(1, round(len(objects) * share)))
    templates = world.template_bytes()
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(max_pool_connections=16),
    )

    def put(key: str, template: str) -> None:
        client.put_object(Bucket=BUCKET, Key=key, Body=templates[template] + b"\n")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda o: put(o.key, o.template), chosen))
    return {o.key for o in chosen if o.kind in CANDIDATE_KINDS}


def _process(p: ProcessRun) -> dict[str, float | int]:
    return {
        "exit_code": p.exit_code,
        "wall_seconds": p.wall_seconds,
        "cpu_seconds": p.cpu_seconds,
        "peak_rss_mb": p.peak_rss_mb,
    }


def _bulkimg_run(built: BuildRun, floor: Floor) -> dict[str, Any]:
    r = built.report
    requests = _requests(r)
    probed = int(r["images_probed"])  # type: ignore[call-overload]
    gets = requests.get("GetObject", 0)
    total = sum(requests.values())
    return {
        "wall_seconds": r["wall_seconds"],
        "seconds_per_image_sku": r["seconds_per_image_sku"],
        "s3_requests": requests,
        "s3_requests_total": total,
        "list_pages": r["list_pages"],
        "list_strategy": r["list_strategy"],
        "images_probed": probed,
        "range_extensions": gets - probed,
        "cache_hits": r["cache_hits"],
        "probe_bytes": r["probe_bytes"],
        "floor": {
            "list_pages": floor.list_pages,
            "gets": floor.candidate_gets,
            "total": floor.cold,
        },
        "over_floor": round(total / floor.cold, 4) if floor.cold else None,
        "process": _process(built.process),
    }


def _results(
    args: argparse.Namespace,
    world: World,
    floors: dict[str, Floor],
    builds: dict[str, BuildRun],
    baseline: dict[str, dict[str, Any]],
    submit: shopify.SubmitCalls,
) -> dict[str, Any]:
    cold = _bulkimg_run(builds["cold"], floors["cold"])
    warm = _bulkimg_run(builds["warm"], floors["warm"])
    changed = _bulkimg_run(builds["changed"], floors["changed"])
    b_cold, b_warm = baseline["cold"], baseline["warm"]

    def speedup(base: dict[str, Any], ours: dict[str, Any]) -> float:
        return round(float(base["wall_seconds"]) / max(float(ours["wall_seconds"]), 1e-6), 2)

    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "scale": args.scale,
        "seed": args.seed,
        "latency_ms": args.latency_ms,
        "world": world.meta,
        "cold_speedup": speedup(b_cold, cold),
        "warm_speedup": speedup(b_warm, warm),
        "changed_speedup": speedup(b_warm, changed),
        "bulkimg_s3_requests": cold["s3_requests_total"],
        "floor_s3_requests": floors["cold"].cold,
        "baseline_s3_requests": sum(b_cold["s3_requests"].values()),
        "s3_requests_over_floor": cold["over_floor"],
        "shopify_calls_bulkimg": submit.total,
        "shopify_calls_bulkimg_by_kind": submit.calls,
        "shopify_calls_bulkimg_polls": submit.polls,
        "shopify_submit": {
            "groups": submit.groups,
            "lines": submit.lines,
            "wall_seconds": submit.wall_seconds,
            "exit_code": submit.exit_code,
        },
        "shopify_calls_bulkimg_warm": submit.warm_night.total,
        "shopify_warm_night": {
            "calls": submit.warm_night.calls,
            "groups_unchanged": submit.warm_night.groups_unchanged,
            "groups_sent": submit.warm_night.groups_sent,
            "bulk_operations": submit.warm_night.bulk_operations,
            "wall_seconds": submit.warm_night.wall_seconds,
            "exit_code": submit.warm_night.exit_code,
        },
        "shopify_calls_baseline": shopify.baseline_calls(b_cold),
        "shopify_calls_baseline_by_mutation": b_cold["shopify_calls"],
        "shopify_calls_baseline_source": "built and counted by bench.baseline, not sent",
        "peak_rss_mb_20k": builds["small"].process.peak_rss_mb,
        "peak_rss_mb_100k": builds["cold"].process.peak_rss_mb,
        "peak_rss_variants": {
            "20k": world.variant_count(world.root / "catalog-20pct.sqlite"),
            "100k": world.variant_count(world.catalog),
        },
        "bytes_per_image": {
            "bulkimg": cold["probe_bytes"],
            "baseline": b_cold["bytes_per_image"],
        },
        "bulkimg": {"cold": cold, "warm": warm, "changed_1pct": changed},
        "baseline": {"cold": b_cold, "warm": b_warm},
    }
    results["goals"] = {
        "cold_speedup_at_least_10": results["cold_speedup"] >= GOALS["cold_speedup"],
        "warm_speedup_at_least_50": results["warm_speedup"] >= GOALS["warm_speedup"],
        "s3_within_10pct_of_floor": (cold["over_floor"] or 99) <= GOALS["s3_over_floor"],
        "rss_under_300mb_at_100k": _rss_goal(results),
    }
    return results
