"""`python -m bench.getclients`: client CPU per ranged GET, for each way the header reads can GET.

Starts the bench's S3 server on a world (`--scale`), lists `--requests` objects, then reads the
first 64 KiB of each with every GET path, one after the other, in `--workers` threads: the
presigned URL over `http1` (`direct`, the default), over httpx, and boto3's `get_object`. Prints
the wall time and the client's CPU per GET (this process). Ratios between the paths are what to
read: absolute numbers move with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from bench.s3server import ACCESS_KEY, BUCKET, REGION, SECRET_KEY, running_server
from bench.world import ensure_world
from bulkimg.s3.get import PresignedGetter
from bulkimg.s3.options import S3Options

BENCH_DIR = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.getclients", description=__doc__)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--cache-dir", type=Path, default=BENCH_DIR / ".cache")
    args = parser.parse_args(argv)
    os.environ.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION=REGION
    )
    from bulkimg.config import load_settings
    from bulkimg.s3.client import make_s3_client

    world = ensure_world(args.cache_dir.resolve(), args.scale, 2026, say=lambda _: None)
    log = args.cache_dir.resolve() / "getclients-s3server.log"
    with running_server(world.root, args.latency_ms / 1000, log) as endpoint:
        base = {"aws_s3_bucket": BUCKET, "aws_endpoint_url_s3": endpoint}
        settings = load_settings(base | {"s3_workers": args.workers}, env_file=None)
        client = make_s3_client(settings)
        objects: list[tuple[str, str]] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            objects += [(o["Key"], o["ETag"].strip('"')) for o in page.get("Contents", [])]
            if len(objects) >= args.requests:
                break
        objects = objects[: args.requests]
        print(f"{len(objects)} ranged GETs (first 64 KiB), {args.workers} threads")
        for name in ("direct", "httpx"):
            getter_settings = settings.model_copy(update={"s3_get_client": name})
            getter = PresignedGetter(client, S3Options.from_settings(getter_settings))
            _measure(name, objects, args.workers, partial(_get_head, getter))
            getter.close()

        def boto3_get(obj: tuple[str, str]) -> bytes:
            key, etag = obj
            answer = client.get_object(
                Bucket=BUCKET, Key=key, Range="bytes=0-65535", IfMatch=f'"{etag}"'
            )
            data: bytes = answer["Body"].read()
            return data

        _measure("boto3", objects, args.workers, boto3_get)


def _get_head(getter: PresignedGetter, obj: tuple[str, str]) -> bytes:
    return getter.get_range(obj[0], obj[1], 0, 65536)


def _measure(
    name: str, objects: list[tuple[str, str]], workers: int, get: Callable[[tuple[str, str]], bytes]
) -> None:
    started, cpu = time.perf_counter(), _cpu()
    with ThreadPoolExecutor(workers) as pool:
        total = sum(len(body) for body in pool.map(get, objects))
    wall, used = time.perf_counter() - started, _cpu() - cpu
    per = 1000 / len(objects)
    print(
        f"{name:7s} {wall:6.2f} s wall, client CPU {used * per:.3f} ms per GET"
        f" ({total / len(objects) / 1024:.1f} KiB each)"
    )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
