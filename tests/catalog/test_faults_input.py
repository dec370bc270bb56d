"""Hostile catalog input: S3 keys stay under the base prefix; bad rows end with a reason."""

from __future__ import annotations

import csv
import posixpath
import re
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from mypy_boto3_s3 import S3Client

from bulkimg.catalog import Catalog, ColumnMap, open_catalog, read_catalog
from bulkimg.demo.samples import image_bytes
from bulkimg.formats.logs import log_safe
from bulkimg.models import ImageSkuState, Rejection, RowProblemKind
from bulkimg.run.build import run_build
from bulkimg.s3.keys import (
    ACCEPTED_EXTENSIONS,
    MAX_VARIATION_DIGITS,
    ParsedName,
    extract_variation_number,
    folder_for,
    is_valid_image_sku,
    parse_image_name,
)
from bulkimg.s3.presign import PROBE_KEYS
from tests.helpers.catalog import mysql_table
from tests.helpers.env import BUCKET
from tests.helpers.fixtures import MakeSettings

# Pieces an attacker (or a broken export) puts in a value; joined in any order by `hostile`.
NASTY_PIECES = [
    "/", "\\", "..", ".", "../", "..\\", "%2F", "%2e%2e", "~", "\x00", "\n", "\r", "\t", " ",
    "\x1b[31m", "\x7f", "\u0085", "\u2028", "\u202e", "\ufeff", "\udcff", "\u0661", "\uff11",
    "é", "😀", "-", "_", "a", "1a", "827749", "sorted-media", "*", "?", "'", '"', ",", "|",
]  # fmt: skip
ASCII_SAFE = re.compile(r"[A-Za-z0-9_-]{2}")

hostile = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(NASTY_PIECES) | st.text(max_size=4), max_size=12).map("".join),
    st.integers(min_value=190, max_value=5000).map(lambda n: "7" * n),  # very long values
    st.just(""),
)
prefixes = st.sampled_from(["sorted-media/", "media/base/", "x/"])
FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.fault_matrix(
    area="Input",
    fault="Image_SKU with path separators, '..', control characters, any Unicode, very long",
    outcome="folder is <base prefix> + three 2-character [A-Za-z0-9_-] parts, or ValueError",
)
@FAST
@given(sku=hostile, prefix=prefixes)
def test_any_image_sku_gives_a_folder_of_three_safe_parts_under_the_prefix_or_an_error(
    sku: str, prefix: str
) -> None:
    try:
        folder = folder_for(sku, prefix)
    except ValueError:
        assert not is_valid_image_sku(sku)
        return
    assert is_valid_image_sku(sku)
    assert folder.startswith(prefix)
    parts = folder[len(prefix) :].split("/")
    assert len(parts) == 4 and parts[3] == ""
    assert all(ASCII_SAFE.fullmatch(p) for p in parts[:3]), folder
    assert posixpath.normpath(folder) + "/" == folder  # nothing for a path resolver to undo


@pytest.mark.fault_matrix(
    area="Input",
    fault="S3 file names with separators, '..', control characters, non-ASCII digits, huge numbers",
    outcome="a name is parsed only when it is <SKU>-<1-9 ASCII digits>a-<digits>.<ext>;"
    " anything else is None or a Rejection, never an exception",
)
@FAST
@given(
    sku=st.sampled_from(["827749", "1102192", "A_b-9"]),
    number=hostile | st.integers(min_value=0, max_value=10**12).map(str),
    suffix=st.sampled_from(["a", "b", "A", "", "a/..", "a\x00"]),
    random=hostile | st.integers(min_value=0).map(str),
    ext=st.sampled_from([*ACCEPTED_EXTENSIONS, "JPG", "txt", "jpg/..", "jpg\x00", "jp\u0261"]),
    prefix=prefixes,
)
@example(sku="827749", number="0a", suffix="", random="1", ext="jpg", prefix="x/")
def test_file_name_parser_accepts_only_safe_names_and_never_raises(
    sku: str, number: str, suffix: str, random: str, ext: str, prefix: str
) -> None:
    name = f"{sku}-{number}{suffix}-{random}.{ext}"
    result = parse_image_name(name, sku)
    assert result is None or isinstance(result, ParsedName | Rejection)
    variation = extract_variation_number(name)
    if not isinstance(result, ParsedName):
        return
    if "-" not in sku:  # the spec's helper takes the SKU as the text before the first '-'
        assert variation == result.variation
    stated = number + suffix  # the name's `<N>a` (a hostile number may bring its own 'a')
    assert re.fullmatch(f"[0-9]{{1,{MAX_VARIATION_DIGITS}}}a", stated)
    assert result.variation == int(stated[:-1])
    assert result.extension in ACCEPTED_EXTENSIONS
    assert name.isascii() and name.isprintable()
    assert "/" not in name and "\\" not in name and ".." not in name
    key = folder_for(sku, prefix) + name
    assert posixpath.normpath(key) == key and key.startswith(prefix)


@pytest.mark.parametrize(
    "name",
    [
        "827749-\u0661a-1.jpg",  # ARABIC-INDIC DIGIT ONE
        "827749-\uff11a-1.jpg",  # FULLWIDTH DIGIT ONE
        "827749-1a-\uff15.jpg",
        "827749-" + "1" * 5000 + "a-1.jpg",  # int() refuses over 4300 digits
        "827749-" + "9" * (MAX_VARIATION_DIGITS + 1) + "a-1.jpg",
    ],
)
def test_non_ascii_digits_and_huge_variation_numbers_are_a_pattern_rejection(name: str) -> None:
    assert parse_image_name(name, "827749") is Rejection.PATTERN
    assert extract_variation_number(name) is None


@FAST
@given(st.text() | hostile)
def test_extract_variation_number_never_raises(name: str) -> None:
    number = extract_variation_number(name)
    assert number is None or 0 <= number < 10**MAX_VARIATION_DIGITS


# --- catalog rows ---------------------------------------------------------------------------

COLUMNS = ("No_", "Image_SKU", "Web_Product_Group_ID", "Description")
GOOD_ROWS = [
    ("GOOD-1", "1102192", "GOOD-G1", "Good ring"),
    ("GOOD-2", "1102192", "GOOD-G1", "Good ring"),
    ("GOOD-3", "827749", "GOOD-G2", "Good pendant"),
]
cell = hostile | st.none()
hostile_rows = st.lists(st.tuples(cell, cell, cell, cell), max_size=10)
sqlite_cell = cell | st.binary(max_size=8) | st.integers(-(2**63), 2**63 - 1)
CATALOG_EXAMPLES = settings(FAST, max_examples=40)


def write_hostile_csv(path: Path, rows: list[tuple[object, ...]]) -> None:
    """Lone surrogates ("\\udcff") become the invalid UTF-8 bytes they stand for."""
    with path.open("w", newline="", encoding="utf-8", errors="surrogateescape") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(["" if v is None else v for v in row] for row in rows)


def write_hostile_sqlite(path: Path, rows: list[tuple[object, ...]]) -> None:
    """Text with lone surrogates is stored as TEXT holding the invalid UTF-8 bytes."""

    def raw(value: object) -> object:
        if isinstance(value, str) and value != value.encode("utf-8", "replace").decode():
            return value.encode("utf-8", "surrogateescape")
        return value

    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")
    db.execute(f"CREATE TABLE nav_items ({', '.join(f'{c} TEXT' for c in COLUMNS)})")
    db.executemany(
        "INSERT INTO nav_items VALUES (CAST(? AS TEXT), CAST(? AS TEXT), ?, CAST(? AS TEXT))",
        [tuple(raw(v) for v in row) for row in rows],
    )
    db.commit()
    db.close()


def check_every_row_ends_once(catalog: Catalog, hostile_count: int) -> None:
    """Each row is exactly one variant or one problem with a reason; OK variants are safe."""
    rows = hostile_count + len(GOOD_ROWS)
    assert catalog.rows_read == rows
    assert catalog.variant_count + len(catalog.problems) == rows
    assert sorted(p.row for p in catalog.problems) == sorted({p.row for p in catalog.problems})
    assert all(1 <= p.row <= rows and p.kind.value for p in catalog.problems)
    variants = [v for g in catalog.groups for v in g.variants]
    for group in catalog.groups:
        assert group.group_id and all(v.group_id == group.group_id for v in group.variants)
    for v in variants:
        orjson.dumps([v.sku, v.group_id, v.image_sku, v.title])  # JSON-safe: no lone surrogate
        assert v.sku and v.sku == v.sku.strip()
        if v.image_sku_state is ImageSkuState.OK:
            assert folder_for(v.image_sku).startswith("sorted-media/")
        else:
            assert not is_valid_image_sku(v.image_sku)
    for p in catalog.problems:
        for value in (p.group_id, p.sku, p.image_sku, p.detail):
            assert log_safe(value).isprintable()
    good = {v.sku: v for v in variants if v.sku.startswith("GOOD-")}
    for sku, image_sku, group, _title in GOOD_ROWS:
        if sku in good:  # a hostile row may legitimately take a good SKU first (duplicate)
            assert (good[sku].group_id, good[sku].image_sku) == (group, image_sku)
            assert good[sku].image_sku_state is ImageSkuState.OK


@pytest.mark.fault_matrix(
    area="Input",
    fault="catalog CSV rows with any Unicode, NUL, control characters, invalid UTF-8,"
    " separators, '..', whitespace, very long and empty values",
    outcome="no exception; every row is one variant or one RowProblem with a reason;"
    " only valid Image_SKUs are marked OK",
)
@CATALOG_EXAMPLES
@given(rows=hostile_rows)
def test_hostile_csv_rows_each_end_as_a_variant_or_a_problem(
    rows: list[tuple[object, ...]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "nav_items.csv"
        write_hostile_csv(path, [*rows, *GOOD_ROWS])
        catalog = read_catalog(open_catalog(str(path), "nav_items", ColumnMap()))
    check_every_row_ends_once(catalog, len(rows))


@pytest.mark.fault_matrix(
    area="Input",
    fault="SQLite catalog rows with invalid UTF-8 TEXT, blobs, numbers, NUL, control"
    " characters, separators, '..', very long and empty values",
    outcome="no exception; every row is one variant or one RowProblem with a reason;"
    " only valid Image_SKUs are marked OK",
)
@CATALOG_EXAMPLES
@given(rows=st.lists(st.tuples(*[sqlite_cell] * 4), max_size=10))
def test_hostile_sqlite_rows_each_end_as_a_variant_or_a_problem(
    rows: list[tuple[object, ...]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.db"
        write_hostile_sqlite(path, [*rows, *GOOD_ROWS])
        catalog = read_catalog(open_catalog(f"sqlite:///{path}", "nav_items", ColumnMap()))
    check_every_row_ends_once(catalog, len(rows))


@pytest.mark.fault_matrix(
    area="Input",
    fault="CSV record the parser cannot read (a field over csv's 128 KiB limit)",
    outcome="that record is a RowProblem naming its place in the file; the rows around it are read",
)
def test_csv_record_over_the_field_limit_is_one_problem_and_reading_goes_on(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nav_items.csv"
    write_hostile_csv(path, [GOOD_ROWS[0], ("X-1", "9" * 200_000, "G", "t"), *GOOD_ROWS[1:]])
    catalog = read_catalog(open_catalog(str(path), "nav_items", ColumnMap()))
    assert [(p.kind, p.row, p.detail) for p in catalog.problems] == [
        (
            RowProblemKind.UNPARSEABLE,
            1,
            "record 2 of the file: field larger than field limit (131072)",
        )
    ]
    assert sorted(v.sku for g in catalog.groups for v in g.variants) == [r[0] for r in GOOD_ROWS]


@pytest.mark.fault_matrix(
    area="Input",
    fault="catalog values that are not valid UTF-8 (bytes in a CSV file, SQLite TEXT)",
    outcome="the row is a RowProblem naming the column; no replacement text reaches S3 or Shopify",
)
@pytest.mark.parametrize("source", ["csv", "sqlite"])
def test_invalid_utf8_value_rejects_its_row_and_names_the_column(
    source: str, tmp_path: Path
) -> None:
    rows = [("X-1", "1102192", "GOOD-G1", "Ring \udce9"), ("X-2", "11\udcff", "G", "t"), *GOOD_ROWS]
    if source == "csv":
        url = str(tmp_path / "nav_items.csv")
        write_hostile_csv(Path(url), rows)
    else:
        write_hostile_sqlite(tmp_path / "c.db", rows)
        url = f"sqlite:///{tmp_path / 'c.db'}"
    catalog = read_catalog(open_catalog(url, "nav_items", ColumnMap()))
    assert sorted((p.kind, p.sku, p.detail) for p in catalog.problems) == [
        (RowProblemKind.NOT_UTF8, "X-1", "title"),
        (RowProblemKind.NOT_UTF8, "X-2", "image_sku"),
    ]
    assert catalog.variant_count == len(GOOD_ROWS)


# --- a whole build with hostile rows among good ones ----------------------------------------

BUILD_ROWS = [
    *GOOD_ROWS,
    ("H-1", "../../etc/passwd", "H-G1", "path traversal"),
    ("H-2", "11/02/19", "H-G1", "separators"),
    ("H-3", "..\\..\\x", "H-G1", "backslashes"),
    ("H-4", "1102192\x00", "H-G2", "NUL"),
    ("H-5", "\u202e1102192", "H-G2", "bidi override"),
    ("H-6", "7" * 300, "H-G2", "very long"),
    ("H-7", "1102192-1a", "H-G3", "a valid Image_SKU that is a prefix of another SKU's file names"),
    ("H-8", "827749", "H-G3\x1b[2J", "control characters \x00 in title and group"),
    ("", "1102192", "H-G4", "no SKU"),
    ("H-9", "1102192", "  ", "no group"),
    ("GOOD-1", "827749", "H-G5", "duplicate SKU"),
    ("H-10", "12\udcff", "H-G5", "invalid UTF-8"),
    ("H-11", "827749", "\x01\x02", "group id that gives an empty handle"),
    ("H-12", "", "H-G6", "no Image_SKU"),
]


def capture_s3_paths(s3: S3Client) -> list[str]:
    """Every Key and Prefix the build sends to S3 (listing, ranged GETs, presigned URLs)."""
    seen: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        names = ("Key", "Prefix")
        sent = [str(params[name]) for name in names if name in params]
        # The presigner checks itself once by signing fixed keys locally: never sent to S3.
        seen.extend(path for path in sent if path not in PROBE_KEYS)

    s3.meta.events.register("before-parameter-build.s3.*", record)
    return seen


@pytest.mark.fault_matrix(
    area="Input",
    fault="catalog mixing good rows with hostile ones (traversal, separators, NUL, bidi, very"
    " long, invalid UTF-8, a valid Image_SKU that is a prefix of another SKU's files,"
    " empty values, duplicates, a group id with no handle)",
    outcome="every row ends exactly once: in a written line, in the missing log with a reason,"
    " in a deferred group with a reason, or in row_problems; no S3 key or prefix outside"
    " the base prefix (sorted-media/ or another); the good groups get all their images",
)
@pytest.mark.parametrize("base", ["sorted-media/", "shop/eu/media/"])
def test_build_with_hostile_rows_accounts_for_every_row_and_keeps_good_groups_whole(
    s3: S3Client, make_settings: MakeSettings, tmp_path: Path, base: str
) -> None:
    for key, fmt in [
        (base + "11/02/19/1102192-1a-1.jpg", "jpg"),
        (base + "11/02/19/1102192-2a-1.png", "png"),
        (base + "82/77/49/827749-1a-5.jpg", "jpg"),
    ]:
        s3.put_object(Bucket=BUCKET, Key=key, Body=image_bytes(fmt, 300, 300))
    catalog = tmp_path / "nav_items.csv"
    write_hostile_csv(catalog, BUILD_ROWS)
    paths = capture_s3_paths(s3)

    config = make_settings(catalog=str(catalog), s3_prefix=base)
    report = run_build(config, s3_client=s3).report

    assert paths and all(p.startswith(base) and ".." not in p for p in paths), paths
    plans = [orjson.loads(x) for x in Path(report.plan_file).read_bytes().splitlines()]
    log = Path(report.missing_log).read_text(encoding="utf-8").splitlines()
    assert all(line.isprintable() for line in log)
    rejected = {int(p["row"]) for p in report.row_problems}
    assert all(p["problem"] and str(p["sku"]).isprintable() for p in report.row_problems)
    ends: dict[str, str] = {}
    for plan in plans:
        missing = {m["sku"]: m["reason"] for m in plan["missing"]}
        for v in plan["variants"]:
            assert v["sku"] not in ends, v["sku"]
            if plan["status"] == "deferred":
                assert plan["deferred_reason"] == report.groups_deferred[plan["group_id"]]
                ends[v["sku"]] = "deferred"
            elif v["image_s3_key"] is not None:
                assert plan["line"] is not None
                ends[v["sku"]] = "written"
            else:
                assert missing[v["sku"]]
                assert sum(f"| Product SKU: {log_safe(v['sku'])} |" in x for x in log) == 1
                ends[v["sku"]] = "missing"
    assert report.rows_read == len(BUILD_ROWS) == len(ends) + len(rejected)
    assert sorted(p["problem"] for p in report.row_problems) == sorted(
        k.value
        for k in (
            RowProblemKind.NO_SKU,
            RowProblemKind.NO_GROUP,
            RowProblemKind.DUPLICATE_SKU,
            RowProblemKind.NOT_UTF8,
        )
    )
    assert {s: e for s, e in ends.items() if e != "missing"} == {
        "GOOD-1": "written", "GOOD-2": "written", "GOOD-3": "written",
        "H-8": "written", "H-11": "deferred",
    }  # fmt: skip
    good = {p["group_id"]: [m["s3_key"] for m in p["media"]] for p in plans}
    assert good["GOOD-G1"] == [
        base + "11/02/19/1102192-1a-1.jpg",
        base + "11/02/19/1102192-2a-1.png",
    ]
    assert good["GOOD-G2"] == [base + "82/77/49/827749-1a-5.jpg"]


@pytest.mark.fault_matrix(
    area="Input",
    fault="MySQL catalog with binary columns holding bytes that are not UTF-8",
    outcome="the row is a RowProblem naming the column; valid binary values are read as text",
)
def test_mysql_binary_value_that_is_not_utf8_rejects_its_row(mysql_url: str) -> None:
    table = mysql_table(mysql_url, [])
    table.name += "_bin"
    conn = table._connect()
    try:
        with conn.cursor() as cur:
            cols = ", ".join(f"`{c}` VARBINARY(64) NULL" for c in COLUMNS)
            cur.execute(f"CREATE TABLE `{table.name}` ({cols})")
            cur.executemany(
                f"INSERT INTO `{table.name}` VALUES (%s,%s,%s,%s)",
                [(b"X-1", b"11\xff", b"G", b"t"), (b"GOOD-1", b"1102192", b"G", "Ring é".encode())],
            )
        conn.commit()
        catalog = read_catalog(open_catalog(mysql_url, table.name, ColumnMap()))
    finally:
        table.__exit__()
        conn.close()
    assert [(p.kind, p.sku, p.detail) for p in catalog.problems] == [
        (RowProblemKind.NOT_UTF8, "X-1", "image_sku")
    ]
    [variant] = catalog.groups[0].variants
    assert (variant.sku, variant.image_sku, variant.title) == ("GOOD-1", "1102192", "Ring é")
