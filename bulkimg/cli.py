"""The `bulkimg` command: parses options, calls the library, prints. No work happens here."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from bulkimg.build import BuildReport, run_build
from bulkimg.config import Settings, load_settings
from bulkimg.errors import BulkimgError, InputFileError, UserError
from bulkimg.progress import PlainReporter, Reporter, RichReporter

console = Console()
err_console = Console(stderr=True)


class _Context:
    def __init__(self, config_file: Path | None) -> None:
        self.config_file = config_file

    def settings(self, **overrides: Any) -> Settings:
        return load_settings(overrides, self.config_file)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Settings file (default: ./bulkimg.toml if present).",
)
@click.version_option(package_name="bulkimg")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """Put product images from S3 onto Shopify products with bulk operations."""
    ctx.obj = _Context(config_file)


def _group_selection(group_ids: Sequence[str], more: Sequence[str], all_groups: bool) -> list[str]:
    ids = [g.strip() for raw in (*group_ids, *more) for g in raw.split(",") if g.strip()]
    if more and not group_ids:
        raise click.UsageError(f"unexpected argument {more[0]!r} (did you mean --group-ids?)")
    if all_groups == bool(ids):
        raise click.UsageError("give either --all or --group-ids ID [ID ...]")
    return ids


@contextmanager
def _reporter() -> Iterator[Reporter]:
    if err_console.is_terminal:
        with RichReporter(err_console) as rich_reporter:
            yield rich_reporter
    else:
        yield PlainReporter(sys.stderr)


@cli.command()
@click.option("--catalog", help="mysql://user@host:port/db, sqlite:///file.db or a .csv file.")
@click.option("--table", help="Catalog table (default nav_items).")
@click.option("--bucket", "aws_s3_bucket", help="S3 bucket with sorted-media/.")
@click.option("--group-ids", "group_ids", multiple=True, help="Groups to build (space/comma).")
@click.option("--all", "all_groups", is_flag=True, help="Build every group of the catalog.")
@click.option(
    "--list-strategy", "s3_list_strategy", type=click.Choice(["auto", "folders", "sweep"])
)
@click.option("--workers", "s3_workers", type=int, help="Parallel S3 requests (default 16).")
@click.option("--variants-mode", type=click.Choice(["catalog", "omit"]))
@click.option("--output-dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--logs-dir", type=click.Path(path_type=Path, file_okay=False))
@click.argument("more_group_ids", nargs=-1)
@click.pass_obj
def build(
    obj: _Context,
    /,
    group_ids: tuple[str, ...],
    all_groups: bool,
    more_group_ids: tuple[str, ...],
    **overrides: Any,
) -> None:
    """Read the catalog, index S3 and write the productSet JSONL, plan and logs."""
    ids = _group_selection(group_ids, more_group_ids, all_groups)
    settings = obj.settings(**overrides)
    with _reporter() as reporter:
        result = run_build(settings, ids or None, reporter)
    print_build_summary(result.report, result.report_path)
    if result.report.groups_deferred:
        sys.exit(1)


@cli.command()
@click.option("--output-dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--group", "group_id", help="Show one group in detail.")
@click.pass_obj
def plan(obj: _Context, output_dir: Path | None, group_id: str | None) -> None:
    """Show output/plan.jsonl as a table (or one group in detail)."""
    settings = obj.settings(output_dir=output_dir)
    path = settings.output_dir / "plan.jsonl"
    if not path.is_file():
        raise InputFileError(f"{path} not found: run `bulkimg build` first")
    table = Table("group", "handle", "status", "media", "variants", "missing")
    with path.open("rb") as lines:
        for raw in lines:
            record = orjson.loads(raw)
            if group_id and record["group_id"] != group_id:
                continue
            if group_id:
                console.print_json(raw.decode())
            table.add_row(
                record["group_id"],
                record["handle"],
                record["status"],
                str(len(record["media"])),
                str(len(record["variants"])),
                str(len(record["missing"])),
            )
    console.print(table)


@cli.command()
@click.option("--workdir", type=click.Path(path_type=Path, file_okay=False), default="output/demo")
@click.pass_obj
def demo(obj: _Context, workdir: Path) -> None:
    """Run `build` on a generated sample catalog against a local S3 (no credentials needed)."""
    from bulkimg.demo import DEMO_BUCKET, demo_settings, local_s3
    from bulkimg.samples import demo_data

    data = demo_data()
    catalog = data.write_csv(workdir / "catalog.csv")
    with local_s3() as s3:
        client = s3.client()
        client.create_bucket(Bucket=DEMO_BUCKET)
        data.upload(client, DEMO_BUCKET)
        err_console.print(
            f"Local S3 at {s3.endpoint_url}: {len(data.objects)} objects in s3://{DEMO_BUCKET},"
            f" catalog {catalog} ({len(data.rows)} rows)"
        )
        settings = load_settings(demo_settings(s3, catalog, workdir), obj.config_file)
        with _reporter() as reporter:
            result = run_build(settings, None, reporter)
    print_build_summary(result.report, result.report_path)


def print_build_summary(report: BuildReport, report_path: Path) -> None:
    table = Table(title="bulkimg build", show_header=False)
    rows: list[tuple[str, object]] = [
        ("groups (written / deferred)", f"{report.groups_written} / {len(report.groups_deferred)}"),
        ("variants", report.variants),
        ("Image_SKUs", report.image_skus),
        ("catalog row problems", len(report.row_problems)),
        ("S3 folders needed", report.folders_needed),
        ("listing strategy", f"{report.list_strategy} ({report.list_pages} pages)"),
        ("S3 requests", _counts(report.s3_requests)),
        ("cache hits / headers read", f"{report.cache_hits} / {report.images_probed}"),
        ("images accepted", report.images_accepted),
        ("files rejected", _counts(report.images_rejected)),
        ("variants missing images", _counts(report.variants_missing_images)),
        ("wall time", f"{report.wall_seconds:.2f} s ({report.seconds_per_image_sku:.4f} s/SKU)"),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    for path in (*report.productset_files, report.plan_file, report.missing_log, report_path):
        console.print(f"  wrote {path}")
    for group_id, reason in report.groups_deferred.items():
        err_console.print(f"[yellow]deferred[/] {group_id}: {reason}")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "none"


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: user errors end as one line and exit code 2; remote failures exit 1."""
    run: Callable[..., Any] = cli.main
    try:
        code = run(args=argv, prog_name="bulkimg", standalone_mode=False)
    except click.exceptions.Abort:
        err_console.print("bulkimg: interrupted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except UserError as exc:
        err_console.print(f"bulkimg: error: {exc}", markup=False, highlight=False)
        sys.exit(exc.exit_code)
    except BulkimgError as exc:
        err_console.print(f"bulkimg: failed: {exc}", markup=False, highlight=False)
        sys.exit(getattr(exc, "exit_code", 1))
    if isinstance(code, int) and code:
        sys.exit(code)
