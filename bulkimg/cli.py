"""The `bulkimg` command: parses options, calls the library, prints. No work happens here."""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.errors import MarkupError
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from bulkimg.config import Settings, load_settings
from bulkimg.errors import BulkimgError, InputFileError, UserError, scrub
from bulkimg.formats.build_report import BuildReport
from bulkimg.formats.nightly_report import NightlyReport
from bulkimg.formats.plan import PLAN_FILE
from bulkimg.progress import JsonReporter, PlainReporter, Reporter, RichReporter, json_event
from bulkimg.run.build import run_build
from bulkimg.run.lock import writer_lock
from bulkimg.run.preview import render_preview


class _Output(Console):
    """A rich console that, under --log-json, prints nothing but JSON lines on stderr: a table
    becomes one event per row (a two-column summary: one event), a line one event."""

    log_json = False

    def __init__(self, level: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.level = level

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if not _Output.log_json:
            super().print(*objects, **kwargs)
            return
        for item in objects:
            if isinstance(item, Table):
                _table_events(item)
            else:
                json_event(sys.stderr, self.level, message=_plain(item, kwargs.get("markup", True)))

    def print_json(self, json: str | None = None, **kwargs: Any) -> None:
        if _Output.log_json:
            json_event(sys.stderr, "record", record=orjson.loads(json or "null"))
        else:
            super().print_json(json, **kwargs)


def _plain(item: object, markup: bool) -> str:
    """The text of a printed line without rich's markup."""
    text = str(item)
    if markup:
        with suppress(MarkupError):
            text = Text.from_markup(text).plain
    return text.strip()


def _table_events(table: Table) -> None:
    cells = [[str(c) for c in column._cells] for column in table.columns]
    rows = list(zip(*cells, strict=True))
    title = str(table.title or "")
    if not table.show_header and len(table.columns) == 2:
        json_event(sys.stderr, "summary", table=title, values=dict(rows))
        return
    headers = [str(column.header) for column in table.columns]
    for row in rows:
        json_event(sys.stderr, "row", table=title, **dict(zip(headers, row, strict=True)))


console = _Output("info")
err_console = _Output("warning", stderr=True)
note_console = _Output("info", stderr=True)  # what a step is doing, on stderr


@dataclass
class _Outcome:
    """What the command did: --log-json's final outcome event (filled by the summaries)."""

    command: str | None = None
    counts: dict[str, int] | None = None
    finished: bool | None = None
    build: dict[str, int] | None = None
    report: NightlyReport | None = None  # as report.json holds it
    files: list[str] = field(default_factory=list)

    def fields(self) -> dict[str, object]:
        """The event's fields: those the command filled, each file named once."""
        given: dict[str, object] = {
            "command": self.command,
            "counts": self.counts,
            "finished": self.finished,
            "build": self.build,
            "report": self.report.model_dump(mode="json") if self.report else None,
            "files": list(dict.fromkeys(self.files)),
        }
        return {k: v for k, v in given.items() if v not in (None, [])}


_outcome = _Outcome()


class _Context:
    def __init__(self, config_file: Path | None, log_json: bool = False) -> None:
        self.config_file = config_file
        self.log_json = log_json

    def settings(self, **overrides: Any) -> Settings:
        return load_settings(overrides, self.config_file)


# `bulkimg --help` lists the commands in the order a user runs them, not alphabetically.
WORKFLOW = ("check", "build", "plan", "submit", "status", "cancel", "retry", "run", "reconcile",
            "preview", "unlock", "demo", "sandbox")  # fmt: skip


class _WorkflowGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        return [n for n in WORKFLOW if n in names] + [n for n in names if n not in WORKFLOW]


@click.group(cls=_WorkflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Settings file (default: ./bulkimg.toml if present).",
)
@click.option(
    "--log-json",
    is_flag=True,
    help="Only JSON lines on stderr: progress, results, errors, a final outcome (log shippers).",
)
@click.version_option(package_name="bulkimg")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None, log_json: bool) -> None:
    """Put product images from S3 onto Shopify products with bulk operations."""
    ctx.obj = _Context(config_file, log_json)
    _Output.log_json = log_json
    _outcome.command = ctx.invoked_subcommand


def _group_selection(group_ids: Sequence[str], more: Sequence[str], all_groups: bool) -> list[str]:
    ids = [g.strip() for raw in (*group_ids, *more) for g in raw.split(",") if g.strip()]
    if more and not group_ids:
        raise click.UsageError(f"unexpected argument {more[0]!r} (did you mean --group-ids?)")
    if all_groups == bool(ids):
        raise click.UsageError("give either --all or --group-ids ID [ID ...]")
    return ids


@contextmanager
def _reporter() -> Iterator[Reporter]:
    context = click.get_current_context(silent=True)
    if context is not None and getattr(context.find_root().obj, "log_json", False):
        yield JsonReporter(sys.stderr)
    elif err_console.is_terminal:
        with RichReporter(err_console) as rich_reporter:
            yield rich_reporter
    else:
        yield PlainReporter(sys.stderr)


@contextmanager
def _locked(settings: Settings, command: str) -> Iterator[None]:
    """This output folder's and shop's lock for a command that writes (bulkimg/run/lock.py)."""
    with writer_lock(settings, command) as grant:
        if grant.stale:
            with _reporter() as reporter:
                for holder in grant.stale:
                    reporter.info(f"took over the lock left by {holder.describe()}: it is gone")
        yield


_AGAINST_SHOP = (
    "Export the shop (read-only) and show what a submit would change on each product;"
    " exit 1 if it would change anything bulkimg does not own."
)
_LIMIT = (
    "Canary: send only the first N products, then prove from exports before and after that they"
    " changed in their images only."
)
_CANARY = "Send N products first; go on with the rest only if they changed in their images only."
_NO_CREATE = "Skip and report groups with no product on the shop instead of creating them."
_REPLACE_VARIANT_IMAGES = (
    "Give every variant its primary image, detaching any other it shows (by default a variant"
    " keeps an image bulkimg does not own, or another image of its own Image_SKU)."
)
_AGAIN = "Submit a build that was already submitted once more (every line is resolved again)."
_THUMBNAILS = "Embed thumbnails in preview.html (one S3 GET per new image, cached)."


_output_dir = click.option(
    "--output-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Output folder (default: BULKIMG_OUTPUT_DIR, else output/).",
)


def _shop_rules(command: Callable[..., None]) -> Callable[..., None]:
    """--no-create and --replace-variant-images: what a submit may do on the shop."""
    command = click.option(
        "--replace-variant-images", "replace_variant_images", flag_value=True, default=None,
        help=_REPLACE_VARIANT_IMAGES,
    )(command)  # fmt: skip
    return click.option(
        "--no-create", "create_products", flag_value=False, default=None, help=_NO_CREATE
    )(command)


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
@_output_dir
@click.option("--logs-dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--thumbnails", "preview_thumbnails", is_flag=True, default=None, help=_THUMBNAILS)
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
    with _locked(settings, "build"), _reporter() as reporter:
        result = run_build(settings, ids or None, reporter)
    print_build_summary(result.report, result.report_path)
    if result.report.groups_deferred:
        sys.exit(1)


@cli.command()
@_output_dir
@click.option("--group", "group_id", help="Show one group in detail.")
@click.option("--against-shop", is_flag=True, help=_AGAINST_SHOP)
@_shop_rules
@click.pass_obj
def plan(obj: _Context, /, group_id: str | None, against_shop: bool, **overrides: Any) -> None:
    """Show output/plan.jsonl as a table (or one group in detail)."""
    settings = obj.settings(**overrides)
    path = settings.output_dir / "plan.jsonl"
    if not path.is_file():
        raise InputFileError(f"{path} not found: run `bulkimg build` first")
    if against_shop:
        _plan_against_shop(settings, group_id)
        return
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


def _print_canary(outcome: Any, next_step: str) -> None:
    if outcome.canary is None:
        return
    if outcome.canary:
        console.print("[red]canary: STOP, a product changed beyond its images:[/red]")
        for problem in outcome.canary:
            console.print(f"  {problem}")
    else:
        console.print(f"canary: the products sent changed only their images; {next_step}")


def _plan_against_shop(settings: Settings, group_id: str | None) -> None:
    from bulkimg.run.against_shop import check_against_shop
    from bulkimg.shopify.client import client_from_settings

    with (
        _locked(settings, "plan --against-shop"),
        client_from_settings(settings) as client,
        _reporter() as reporter,
    ):
        check = check_against_shop(settings, client, reporter)
    table = Table(
        "group", "action", "found by", "product", "adopt", "upload", "replace", "remove",
        "foreign kept", "variant images", "detail", title="what a submit would change",
    )  # fmt: skip
    for g in check.groups:
        quiet = g.action == "unchanged" and not g.variant_images_swapped
        if (group_id and g.group_id != group_id) or (not group_id and quiet):
            continue
        variants = (
            f"{g.variant_images_set} set, {g.variant_images_swapped} swapped,"
            f" {g.variant_images_kept} kept"
        )
        table.add_row(
            g.group_id, g.action, g.match, g.product_id or "", str(g.adopted), str(g.uploaded),
            str(g.replaced), str(g.removed), str(g.kept_foreign), variants, g.detail,
        )  # fmt: skip
    console.print(table)
    console.print(", ".join(f"{k}: {v}" for k, v in sorted(check.totals().items())))
    for problem in check.problems:
        console.print(f"[red]would change what bulkimg does not own:[/red] {problem}")
    if not check.problems and (settings.output_dir / PLAN_FILE).is_file():
        page = render_preview(settings)  # each card says what the next submit would do
        console.print(f"  preview: {page.path} (each card says what a submit would change)")
    sys.exit(1 if check.problems else 0)


@cli.command()
@click.option("--wait", is_flag=True, help="Poll until every operation ends, then attach images.")
@click.option("--limit", type=click.IntRange(min=1), help=_LIMIT)
@click.option("--again", is_flag=True, help=_AGAIN)
@_shop_rules
@_output_dir
@click.pass_obj
def submit(obj: _Context, /, wait: bool, limit: int | None, again: bool, **overrides: Any) -> None:
    """Run the build's lines against the shop as it is now (resumes an unfinished run; a build
    already submitted is not sent again without --again)."""
    from bulkimg.formats.submitted import submitted_by
    from bulkimg.run.ledger import digest_of_build, digest_of_run, productset_files_of_build
    from bulkimg.run.submit import Submission
    from bulkimg.shopify.client import client_from_settings

    settings = obj.settings(**overrides)
    if limit is not None and not wait:
        raise click.UsageError("--limit needs --wait (the canary is checked when it has run)")
    with _locked(settings, "submit --wait" if wait else "submit"):
        with client_from_settings(settings) as client, _reporter() as reporter:
            files = productset_files_of_build(settings.output_dir)
            current = digest_of_build(files)
            submission = Submission(settings, client, reporter, limit=limit)
            state = submission.unfinished()
            if state is None:
                earlier = None if again else submitted_by(settings.output_dir, current)
                if earlier is not None:
                    console.print(
                        f"this build was already submitted (run {earlier.run_id}, started"
                        f" {earlier.started_at}): nothing sent. `bulkimg build` makes a new one;"
                        " `bulkimg submit --wait --again` sends this one once more."
                    )
                    sys.exit(0)
                state = submission.start(files)
            else:
                reporter.info(f"resuming run {state.run_id}")
            outcome = submission.run(state, wait)
        print_submit_summary(outcome)
        if not state.merge_manifest and state.source_files and digest_of_run(state) != current:
            console.print("  the build changed since this run started: run `bulkimg submit --wait`"
                          " again to send the new one")  # fmt: skip
        _print_canary(outcome, "`bulkimg submit --wait` sends the rest")
        _refresh_preview(settings, outcome)
    sys.exit(outcome.exit_code)


@cli.command()
@_output_dir
@click.pass_obj
def reconcile(obj: _Context, output_dir: Path | None) -> None:
    """Rebuild the state file from the shop (a bulk export of products, media and variants)."""
    from bulkimg.run.nightly import reconcile as reconcile_state
    from bulkimg.shopify.client import client_from_settings

    settings = obj.settings(output_dir=output_dir)
    with (
        _locked(settings, "reconcile"),
        client_from_settings(settings) as client,
        _reporter() as reporter,
    ):
        counts = reconcile_state(settings, client, reporter)
    _outcome.counts = counts
    console.print(f"state rebuilt in {settings.state_file}: {_counts(counts)}")


@cli.command("run")
@click.option("--group-ids", "group_ids", multiple=True, help="Groups to run (space/comma).")
@click.option("--all", "all_groups", is_flag=True, help="Run every group of the catalog.")
@_shop_rules
@click.option("--canary", type=click.IntRange(min=1), help=_CANARY)
@_output_dir
@click.argument("more_group_ids", nargs=-1)
@click.pass_obj
def run_command(
    obj: _Context,
    /,
    group_ids: tuple[str, ...],
    all_groups: bool,
    more_group_ids: tuple[str, ...],
    canary: int | None,
    **overrides: Any,
) -> None:
    """The nightly run: reconcile if needed, build, submit --wait, report (under a lock)."""
    from bulkimg.run.nightly import run_nightly
    from bulkimg.shopify.client import client_from_settings

    ids = _group_selection(group_ids, more_group_ids, all_groups)
    settings = obj.settings(**overrides)
    with _locked(settings, "run"):
        with client_from_settings(settings) as client, _reporter() as reporter:
            result = run_nightly(settings, client, ids or None, reporter, canary)
        if result.build is not None:
            print_build_summary(result.build.report, result.build.report_path)
        print_submit_summary(result.submit)
        _print_canary(result.submit, "the rest is not sent")
        _refresh_preview(settings, result.submit)
    _outcome.report = result.report
    _wrote(settings.output_dir / "report.json")
    sys.exit(result.exit_code)


@cli.command()
@click.argument("failures_file", type=click.Path(path_type=Path, dir_okay=False))
@_shop_rules
@_output_dir
@click.pass_obj
def retry(obj: _Context, /, failures_file: Path, **overrides: Any) -> None:
    """Submit again only the retryable lines of FAILURES_FILE, and merge the outcome."""
    from bulkimg.run.ledger import signing_settings
    from bulkimg.run.retry import failures_to_retry, run_retry
    from bulkimg.s3.client import make_s3_client
    from bulkimg.shopify.client import client_from_settings

    failures_to_retry(failures_file)  # a missing or malformed file is the first thing to report
    settings = obj.settings(**overrides)
    settings.require("aws_s3_bucket")
    with _locked(settings, "retry"):
        with client_from_settings(settings) as client, _reporter() as reporter:
            inputs, outcome = run_retry(
                settings,
                client,
                failures_file,
                make_s3_client(signing_settings(settings)),
                reporter,
            )
        if outcome is None:
            console.print(f"nothing to retry in {failures_file}")
            sys.exit(1 if inputs.carried_failures else 0)
        print_submit_summary(outcome)
        _refresh_preview(settings, outcome)
    sys.exit(outcome.exit_code)


@cli.command()
@_output_dir
@click.pass_obj
def status(obj: _Context, output_dir: Path | None) -> None:
    """Show the run in output/run.json and the live state of its operations."""
    from bulkimg.formats.run import RunStore
    from bulkimg.run.status import live_status, next_step
    from bulkimg.shopify.client import client_from_settings
    from bulkimg.shopify.operation import BulkOperationNode

    settings = obj.settings(output_dir=output_dir)
    state = RunStore(settings.output_dir).load()
    live: dict[str, BulkOperationNode] = {}
    if settings.shopify_shop and settings.shopify_access_token:
        with client_from_settings(settings) as client:
            live = live_status(client, state)
    table = Table("phase", "file", "lines", "step", "operation", "status", "objects", title=(
        f"run {state.run_id} ({'complete' if state.completed_at else 'unfinished'})"
    ))  # fmt: skip
    for op in state.operations:
        now = live.get(op.operation_id or "")
        table.add_row(
            op.phase.value,
            Path(op.input_file).name if op.input_file else "-",
            str(op.input_lines),
            op.step.value,
            op.operation_id or "-",
            (now.status if now else op.status) or "-",
            str(now.object_count if now else op.object_count),
        )
    console.print(table)
    console.print(f"  next: {next_step(state, settings.output_dir)}", highlight=False)


@cli.command()
@_output_dir
@click.pass_obj
def check(obj: _Context, output_dir: Path | None) -> None:
    """Check the shop, the state file, the bucket, its region, the credentials and one
    presigned URL, writing nothing; exit 2 if any check fails."""
    from bulkimg.run.preflight import run_checks

    settings = obj.settings(output_dir=output_dir)
    checks = run_checks(settings)
    for found in checks:
        mark = "[green]ok[/]  " if found.ok else "[red]FAIL[/]"
        # One line per check, however narrow the terminal (or a log file) is.
        line = f"{mark} {found.name}: {escape(found.detail)}"
        console.print(line, highlight=False, soft_wrap=True)
    sys.exit(0 if all(c.ok for c in checks) else 2)


@cli.command()
@_output_dir
@click.pass_obj
def cancel(obj: _Context, output_dir: Path | None) -> None:
    """Stop the unfinished run: its live bulk operations are cancelled on the shop, what ran is
    recorded, the rest goes to failures.jsonl (retryable)."""
    from bulkimg.run.status import set_aside_damaged
    from bulkimg.run.submit import Submission
    from bulkimg.shopify.client import client_from_settings

    settings = obj.settings(output_dir=output_dir)
    with _locked(settings, "cancel"):
        with client_from_settings(settings) as client, _reporter() as reporter:
            submission = Submission(settings, client, reporter)
            try:
                state = submission.unfinished()
            except InputFileError:  # run.json cannot be read
                if not submission.store.exists():
                    raise
                aside = set_aside_damaged(submission.store, client)
                console.print(
                    f"{submission.store.path} could not be read: set aside as {aside}; no bulk"
                    " operation runs on the shop. `bulkimg submit --wait --again` sends the"
                    " build again (what is there is kept)"
                )
                sys.exit(0)
            if state is None:
                console.print("no unfinished run: nothing to cancel")
                sys.exit(0)
            stopping = submission.cancel(state)
            reporter.info(f"run {state.run_id}: {len(stopping)} bulk operations asked to stop")
            outcome = submission.run(state, wait=True)
        if not state.resolved:
            console.print(f"run {state.run_id} cancelled before any line was sent")
            sys.exit(0)
        print_submit_summary(outcome)
        _refresh_preview(settings, outcome)
        console.print(f"  `bulkimg retry {settings.output_dir / 'failures.jsonl'}` sends the rest")
        sys.exit(outcome.exit_code)


def _refresh_preview(settings: Settings, outcome: Any) -> None:
    """Show the outcome on the preview page (no S3 request: URLs are signed locally)."""
    from bulkimg.run.preview import render_preview

    if outcome.finished:
        _wrote(render_preview(settings).path)


def print_submit_summary(outcome: Any) -> None:
    table = Table(title="bulkimg submit", show_header=False)
    for op in outcome.operations:
        name = Path(op.input_file).name if op.input_file else "products, media, variants"
        table.add_row(f"{op.phase.value}: {name}", f"{op.status or op.step.value}")
    for key, value in outcome.counts.items():
        table.add_row(key.replace("_", " "), str(value))
    console.print(table)
    if outcome.links_expiry:
        console.print(f"  image links signed now, valid until {outcome.links_expiry}")
    if not outcome.finished:
        console.print("submitted; `bulkimg status` shows progress, `bulkimg submit --wait` resumes")
    _outcome.counts = dict(outcome.counts)
    _outcome.finished = outcome.finished
    for path in (outcome.manifest, outcome.failures, outcome.failure_log):
        if path is not None:
            _wrote(path)


@cli.command()
@_output_dir
@click.option("--thumbnails", "preview_thumbnails", is_flag=True, default=None, help=_THUMBNAILS)
@click.option("--open", "open_page", is_flag=True, help="Open the page in the default browser.")
@click.pass_obj
def preview(obj: _Context, /, open_page: bool, **overrides: Any) -> None:
    """Re-render output/preview.html from the plan, manifest and failures (no Shopify call)."""
    settings = obj.settings(**overrides)
    with _locked(settings, "preview"):
        result = render_preview(settings)
    _outcome.counts = {"groups": result.groups, "bytes": result.bytes}
    _wrote(f"{result.path} ({result.groups} groups, {result.bytes:,} bytes)")
    if result.thumbnail_gets:
        console.print(f"  thumbnails: {result.thumbnail_gets} S3 GETs")
    if open_page:
        click.launch(str(result.path))


@cli.command()
@_output_dir
@click.pass_obj
def unlock(obj: _Context, output_dir: Path | None) -> None:
    """Clear a lock its holder left behind (a crash on another host); never a live one."""
    from bulkimg.run.lock import unlock as clear_locks

    settings = obj.settings(output_dir=output_dir)
    cleared = clear_locks(settings)
    for path, holder in cleared:
        console.print(f"cleared {path}, left by {holder.describe()}", highlight=False)
    if not cleared:
        console.print("no lock to clear")


@cli.command()
@click.option("--workdir", type=click.Path(path_type=Path, file_okay=False), default="output/demo")
@click.option(
    "--existing-shop",
    is_flag=True,
    help="Seed the shop as an existing workflow left it first; end with what changed on it.",
)
@click.pass_obj
def demo(obj: _Context, workdir: Path, existing_shop: bool) -> None:
    """build → submit --wait → retry on a sample catalog, a local S3 and the sandbox shop."""
    from bulkimg.demo.run import run_demo
    from bulkimg.sandbox.snapshot import summarize

    with _reporter() as reporter:
        result = run_demo(
            workdir,
            obj.config_file,
            reporter,
            say=note_console.print,
            show_build=lambda built: print_build_summary(built.report, built.report_path),
            show_submit=print_submit_summary,
            existing_shop=existing_shop,
        )
    if result.changes is not None:
        console.print("What changed on the shop (products, field by field):")
        for line in summarize(result.changes):
            console.print(f"  {line}", soft_wrap=True, highlight=False, markup=False)
    final = result.retry or result.submit
    if final.manifest is not None:
        from bulkimg.formats.manifest import manifest_counts

        console.print(f"groups: {_counts(manifest_counts(final.manifest))}")
    console.print(f"preview: {result.preview}")
    sys.exit(final.exit_code)


@cli.group()
def sandbox() -> None:
    """The sandbox shop: a local emulator of the Shopify Admin API bulkimg uses."""


_STATE = "SQLite file keeping the shop across restarts (default: temporary)."
_ACCESS = "Access token the shop accepts (default: shpat_sandbox)."


@sandbox.command("serve")
@click.option("--port", type=int, default=0, help="Port on 127.0.0.1 (default: a free one).")
@click.option("--state", "state_path", type=click.Path(path_type=Path, dir_okay=False), help=_STATE)
@click.option("--token", envvar="SHOPIFY_ACCESS_TOKEN", show_envvar=True, help=_ACCESS)
def sandbox_serve(port: int, state_path: Path | None, token: str | None) -> None:
    """Serve the sandbox shop until SIGTERM or Ctrl-C; point SHOPIFY_SHOP at the URL it prints."""
    from bulkimg.sandbox import SandboxConfig, SandboxShop, serve
    from bulkimg.sandbox.server import wait_for_shutdown_signal
    from bulkimg.shopify.documents import ADMIN_API_VERSION

    config = SandboxConfig(access_token=token) if token else SandboxConfig()
    with SandboxShop(state_path, config) as shop, serve(shop, port=port) as url:
        console.print(f"Sandbox shop at {url} (API {ADMIN_API_VERSION})", highlight=False)
        if state_path is None:
            err_console.print("state: temporary (use --state FILE to keep the shop)")
        wait_for_shutdown_signal()
    err_console.print("sandbox shop stopped")


@sandbox.command("seed")
@click.option(
    "--scenario",
    type=click.Choice(["existing-catalog"]),
    default="existing-catalog",
    show_default=True,
    help="What to fill the shop with (see docs/sandbox.md, Seeded shop).",
)
@click.option("--catalog", help="mysql://user@host:port/db, sqlite:///file.db or a .csv file.")
@click.option("--table", help="Catalog table (default nav_items).")
@click.option("--bucket", "aws_s3_bucket", help="S3 bucket with sorted-media/.")
@click.option("--state", "state_path", type=click.Path(path_type=Path, dir_okay=False), help=_STATE)
@click.option("--seed", "seed_number", type=int, default=0, show_default=True, help="Random seed.")
@click.pass_obj
def sandbox_seed(
    obj: _Context, /, scenario: str, state_path: Path | None, seed_number: int, **overrides: Any
) -> None:
    """Fill a sandbox shop's state file as the catalog's existing workflow left the shop."""
    from bulkimg.sandbox import SandboxShop
    from bulkimg.sandbox.seed import seed_from_settings

    settings = obj.settings(**overrides)
    settings.require("catalog", "aws_s3_bucket")
    if state_path is not None and state_path.exists():
        from bulkimg.sandbox.store import Store

        store = Store(state_path)
        try:
            existing = len(store.products())
        finally:
            store.close()
        if existing:
            raise UserError(f"{state_path} already holds {existing} products: seed a new file")
    with SandboxShop(state_path) as shop:
        report = seed_from_settings(shop, settings, seed=seed_number)
    click.echo(report.summary())  # one line, never wrapped
    if state_path is None:
        err_console.print("state: temporary, now gone (use --state FILE to keep the shop)")


def print_build_summary(report: BuildReport, report_path: Path) -> None:
    table = Table(title="bulkimg build", show_header=False)
    rows: list[tuple[str, object]] = [
        ("groups (written / deferred)", f"{report.groups_written} / {len(report.groups_deferred)}"),
        ("variants", report.variants),
        ("Image_SKUs", report.image_skus),
        ("catalog row problems", len(report.row_problems)),
        ("S3 folders needed", report.folders_needed),
        ("listing strategy", f"{report.list_strategy} ({report.list_pages} pages)"),
        ("listing strategy, why", report.list_strategy_reason or "-"),
        ("S3 requests", _counts(report.s3_requests)),
        ("S3 bucket region", _region(report)),
        ("links expire", report.links_expiry or "-"),
        ("link check", _link_check(report)),
        ("cache hits / headers read", f"{report.cache_hits} / {report.images_probed}"),
        ("images accepted", report.images_accepted),
        ("files rejected", _counts(report.images_rejected)),
        ("variants missing images", _counts(report.variants_missing_images)),
        ("wall time", f"{report.wall_seconds:.2f} s ({report.seconds_per_image_sku:.4f} s/SKU)"),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    _outcome.build = {
        "groups_written": report.groups_written,
        "groups_deferred": len(report.groups_deferred),
        "variants": report.variants,
        "image_skus": report.image_skus,
        "images_accepted": report.images_accepted,
        "row_problems": len(report.row_problems),
    }
    written = (*report.productset_files, report.plan_file, report.missing_log, report.preview_file)
    for path in (*written, report_path):
        _wrote(path)
    for group_id, reason in report.groups_deferred.items():
        err_console.print(f"[yellow]deferred[/] {group_id}: {reason}")
    if report.fast_path_fallbacks:
        total = sum(report.fast_path_fallbacks.values())
        err_console.print(
            f"[yellow]{total} S3 requests fell back from the fast path to boto3[/]"
            f" ({_counts(report.fast_path_fallbacks)}): check AWS_REGION, the credentials and"
            " the clock",
            highlight=False,
        )

    for warning in report.warnings:
        err_console.print(f"[yellow]warning[/] {escape(warning)}", highlight=False)


def _region(report: BuildReport) -> str:
    if report.bucket_region is None:
        return f"{report.signing_region} (the server does not say the bucket's)"
    if report.bucket_region != report.signing_region:
        return f"{report.bucket_region} (signed for {report.signing_region})"
    return report.bucket_region


def _link_check(report: BuildReport) -> str:
    check = report.link_check
    if check is None:
        return "no link written"
    return f"HTTP {check.status} for one presigned URL ({check.seconds:.2f} s)"


def _wrote(path: object) -> None:
    console.print(f"  wrote {path}")
    _outcome.files.append(str(path))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or "none"


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: user errors end as one line and exit code 2; remote failures exit 1.

    Under --log-json every line is a JSON object (errors too), and the last one is the outcome:
    the command, its exit code and what it counted.
    """
    args = list(argv) if argv is not None else sys.argv[1:]
    log_json = _Output.log_json = "--log-json" in args
    global _outcome
    _outcome = _Outcome()
    code = _run(args)
    if log_json:
        json_event(sys.stderr, "outcome", exit_code=code, **_outcome.fields())
    if code:
        sys.exit(code)


def _run(args: list[str]) -> int:
    """Run the command; its exit code (errors reported, as one line or one JSON event)."""
    run: Callable[..., Any] = cli.main
    try:
        code = run(args=args, prog_name="bulkimg", standalone_mode=False)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except click.exceptions.Abort:
        return _error("bulkimg: interrupted", 130)
    except click.ClickException as exc:
        if not _Output.log_json:
            exc.show()
            return exc.exit_code
        return _error(f"bulkimg: error: {exc.format_message()}", exc.exit_code)
    except UserError as exc:
        return _error(f"bulkimg: error: {exc}", exc.exit_code)  # one line, never wrapped
    except BulkimgError as exc:
        return _error(f"bulkimg: failed: {exc}", getattr(exc, "exit_code", 1))
    except Exception:  # a bug: its traceback, every credential the settings hold masked
        trace = scrub(traceback.format_exc()).rstrip()
        if _Output.log_json:
            return _error("bulkimg: internal error (a bug)", 1, traceback=trace)
        click.echo(trace, err=True)
        return _error("bulkimg: internal error (a bug): please report the traceback above", 1)
    return code if isinstance(code, int) else 0


def _error(message: str, code: int, **fields: str) -> int:
    if _Output.log_json:
        json_event(sys.stderr, "error", message=scrub(message), exit_code=code, **fields)
    else:
        click.echo(scrub(message), err=True)
    return code
