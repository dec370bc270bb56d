"""The Markdown table of a benchmark result (`bench/results/latest.md`)."""

from __future__ import annotations

from typing import Any


def _n(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "—" if value is None else str(value)


def _requests(by_type: dict[str, int]) -> str:
    return ", ".join(f"{_n(v)} {k}" for k, v in sorted(by_type.items())) or "0"


def _row(*cells: Any) -> str:
    return "| " + " | ".join(_n(c) if not isinstance(c, str) else c for c in cells) + " |"


def markdown(r: dict[str, Any]) -> str:
    """One table: bulkimg vs the spec's design, with the floor and the ratio."""
    b, base = r["bulkimg"], r["baseline"]
    cold, warm, changed = b["cold"], b["warm"], b["changed_1pct"]
    bc, bw = base["cold"], base["warm"]
    world = r["world"]["counts"]
    rv = r["peak_rss_variants"]
    lines = [
        f"Scale {r['scale']:g}: {_n(world['groups'])} groups, {_n(world['variants'])} variants,"
        f" {_n(world['image_skus'])} Image_SKUs, {_n(world['objects'])} S3 objects;"
        f" S3 latency {r['latency_ms']:g} ms per request; {r['machine']['cpus']} CPUs,"
        f" Python {r['machine']['python']}. Command: `{r['command']}`.",
        "",
        "| | bulkimg | spec design (baseline) | floor | baseline / bulkimg |",
        "| --- | --- | --- | --- | --- |",
        _row(
            "S3 requests, cold",
            _requests(cold["s3_requests"]),
            _requests(bc["s3_requests"]),
            f"{_n(cold['floor']['list_pages'])} LIST + {_n(cold['floor']['gets'])} GET",
            f"{bc_total(bc) / max(1, cold['s3_requests_total']):.2f}x",
        ),
        _row(
            "S3 requests vs floor, cold",
            f"{cold['over_floor']:.3f}x ({_n(cold['range_extensions'])} range extensions)",
            f"{bc_total(bc) / max(1, cold['floor']['total']):.2f}x",
            "1.000x",
            "",
        ),
        _row(
            "S3 requests, no change",
            _requests(warm["s3_requests"]),
            _requests(bw["s3_requests"]),
            f"{_n(warm['floor']['list_pages'])} LIST",
            f"{bc_total(bw) / max(1, warm['s3_requests_total']):.0f}x",
        ),
        _row(
            "S3 requests, 1% changed",
            _requests(changed["s3_requests"]),
            "as cold",
            f"{_n(changed['floor']['list_pages'])} LIST + {_n(changed['floor']['gets'])} GET",
            f"{bc_total(bw) / max(1, changed['s3_requests_total']):.0f}x",
        ),
        _row(
            "build wall time, cold",
            f"{cold['wall_seconds']:.1f} s",
            f"{bc['wall_seconds']:.1f} s",
            "",
            f"**{r['cold_speedup']:.1f}x**",
        ),
        _row(
            "build wall time, no change",
            f"{warm['wall_seconds']:.1f} s",
            f"{bw['wall_seconds']:.1f} s" + ("" if "not_measured" not in bw else " (cold run)"),
            "",
            f"**{r['warm_speedup']:.1f}x**",
        ),
        _row(
            "build wall time, 1% changed",
            f"{changed['wall_seconds']:.1f} s",
            "as no change",
            "",
            f"{r['changed_speedup']:.1f}x",
        ),
        _row(
            "time per Image_SKU, cold / no change",
            _ms_pair(cold, warm),
            _ms_pair(bc, bw),
            "",
            "spec: < 5,000 ms",
        ),
        _row(
            "Shopify API calls per run",
            f"{_n(r['shopify_calls_bulkimg'])} ({_n(r['shopify_calls_bulkimg_polls'])} polls;"
            f" {_n(r['shopify_submit']['groups'])} groups submitted)",
            f"{_n(r['shopify_calls_baseline'])} ("
            + ", ".join(f"{_n(v)} {k}" for k, v in r["shopify_calls_baseline_by_mutation"].items())
            + ")",
            "",
            "",
        ),
        _row(
            "Shopify API calls, night with no change",
            _warm_night(r),
            _n(r["shopify_calls_baseline"]),
            "",
            "",
        ),
        _row(
            "peak RSS of build",
            f"{r['peak_rss_mb_20k']:.0f} MB at {_n(rv['20k'])} variants,"
            f" {r['peak_rss_mb_100k']:.0f} MB at {_n(rv['100k'])}",
            f"{bc['process']['peak_rss_mb']:.0f} MB at {_n(world['variants'])}",
            "",
            "target < 300 MB at 100,000",
        ),
        _row(
            "S3 bytes read per image (median / p99)",
            f"{_n(r['bytes_per_image']['bulkimg']['median'])} /"
            f" {_n(r['bytes_per_image']['bulkimg']['p99'])}",
            f"{_n(r['bytes_per_image']['baseline']['median'])} /"
            f" {_n(r['bytes_per_image']['baseline']['p99'])}",
            "",
            "",
        ),
        _row(
            "CPU time of the build process, cold",
            f"{cold['process']['cpu_seconds']:.1f} s",
            f"{bc['process']['cpu_seconds']:.1f} s",
            "",
            "",
        ),
    ]
    verdict = {True: "yes", False: "no", None: "not measured at this scale"}
    goals = ", ".join(f"{k}: {verdict[v]}" for k, v in r["goals"].items())
    lines += ["", f"Goals met — {goals}.", ""]
    return "\n".join(lines)


def bc_total(run: dict[str, Any]) -> int:
    return sum(int(v) for v in run["s3_requests"].values())


def _ms_pair(a: dict[str, Any], b: dict[str, Any]) -> str:
    return f"{a['seconds_per_image_sku'] * 1000:.2f} / {b['seconds_per_image_sku'] * 1000:.2f} ms"


def _warm_night(r: dict[str, Any]) -> str:
    night = r.get("shopify_warm_night")
    if not night:
        return _n(r["shopify_calls_bulkimg_warm"])
    return (
        f"{_n(r['shopify_calls_bulkimg_warm'])} (second `bulkimg run`:"
        f" {_n(night['groups_unchanged'])} groups unchanged, {_n(night['groups_sent'])} sent,"
        f" {_n(night['bulk_operations'])} bulk operations)"
    )
