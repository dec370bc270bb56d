"""Catalog sources (CSV, SQLite, MariaDB) and the rules for bad rows."""

from __future__ import annotations

import csv
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bulkimg.catalog import ColumnMap, open_catalog, read_catalog
from bulkimg.errors import CatalogError
from bulkimg.models import ImageSkuState, RowProblemKind
from tests.helpers.catalog import COLUMNS, ROWS, mysql_table


def write_csv(
    path: Path, rows: list[tuple[object, ...]], columns: tuple[str, ...] = COLUMNS
) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(["" if v is None else v for v in row] for row in rows)
    return path


def write_sqlite(path: Path, rows: list[tuple[object, ...]]) -> Path:
    db = sqlite3.connect(path)
    db.execute(f"CREATE TABLE nav_items ({', '.join(f'{c} TEXT' for c in COLUMNS)}, Extra TEXT)")
    db.executemany("INSERT INTO nav_items VALUES (?,?,?,?,'x')", rows)
    db.commit()
    db.close()
    return path


@pytest.fixture(params=["csv", "sqlite", "mysql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "csv":
        yield str(write_csv(tmp_path / "nav_items.csv", ROWS))
    elif request.param == "sqlite":
        yield f"sqlite:///{write_sqlite(tmp_path / 'catalog.db', ROWS)}"
    else:
        url = request.getfixturevalue("mysql_url")
        with mysql_table(url, ROWS) as table:
            yield f"{url}#{table}"


def _open(url: str, columns: ColumnMap | None = None):  # type: ignore[no-untyped-def]
    url, _, table = url.partition("#")
    return open_catalog(url, table or "nav_items", columns or ColumnMap())


def test_groups_sorted_and_variants_keep_order_by_no(catalog_url: str) -> None:
    catalog = read_catalog(_open(catalog_url))
    assert [g.group_id for g in catalog.groups] == ["GID-100288", "LGD-100040", "LGD-101792"]
    assert [v.sku for v in catalog.groups[2].variants] == ["827748", "827753"]
    assert catalog.groups[2].title == "Solitaire Ring"


def test_bad_rows_are_reported_not_fatal(catalog_url: str) -> None:
    catalog = read_catalog(_open(catalog_url))
    kinds = sorted((p.kind, p.sku) for p in catalog.problems)
    assert kinds == sorted(
        [
            (RowProblemKind.NO_SKU, ""),
            (RowProblemKind.NO_GROUP, "498112"),
            (RowProblemKind.DUPLICATE_SKU, "827748"),
        ]
    )
    assert catalog.rows_read == len(ROWS)
    assert catalog.variant_count == len(ROWS) - 3


def test_image_sku_is_trimmed_and_classified(catalog_url: str) -> None:
    catalog = read_catalog(_open(catalog_url))
    variants = {v.sku: v for g in catalog.groups for v in g.variants}
    assert variants["827748"].image_sku == "827749"
    assert variants["827748"].image_sku_state is ImageSkuState.OK
    assert variants["800762"].image_sku_state is ImageSkuState.EMPTY
    assert variants["800763"].image_sku_state is ImageSkuState.INVALID


def test_group_ids_select_groups_and_unknown_ones_are_reported(catalog_url: str) -> None:
    catalog = read_catalog(_open(catalog_url), ["LGD-101792", "NOPE-1"])
    assert [g.group_id for g in catalog.groups] == ["LGD-101792"]
    assert [(p.kind, p.group_id) for p in catalog.problems] == [
        (RowProblemKind.UNKNOWN_GROUP, "NOPE-1")
    ]


def test_column_mapping_is_configurable(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", [("A1", "123", "G1", "t")], ("sku", "img", "grp", "name"))
    columns = ColumnMap(sku="sku", image_sku="img", group="grp", title="name", order="sku")
    catalog = read_catalog(open_catalog(str(path), "ignored", columns))
    assert catalog.groups[0].variants[0].image_sku == "123"
    assert catalog.groups[0].title == "t"


def test_missing_required_column_names_it(catalog_url: str) -> None:
    columns = ColumnMap(image_sku="Picture_SKU")
    with pytest.raises(CatalogError, match="no column 'Picture_SKU'"):
        read_catalog(_open(catalog_url, columns))


def test_the_title_column_is_optional_when_set_empty(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "c.csv", [("A1", "123", "G1")], COLUMNS[:3])
    catalog = read_catalog(open_catalog(str(path), "nav_items", ColumnMap(title="")))
    assert catalog.groups[0].title is None
    # Left at its default (Description) it must exist: a typo no longer retitles products.
    with pytest.raises(CatalogError, match="no column 'Description'"):
        read_catalog(open_catalog(str(path), "nav_items", ColumnMap()))


def test_unknown_catalog_url_is_a_clear_error() -> None:
    with pytest.raises(CatalogError, match="catalog must be"):
        open_catalog("postgres://u:hunter2@h/db", "nav_items", ColumnMap())
    with pytest.raises(CatalogError) as info:
        open_catalog("ftp://u:hunter2@h/db", "nav_items", ColumnMap())
    assert "hunter2" not in str(info.value)


def test_missing_table_and_file_are_clear_errors(tmp_path: Path) -> None:
    db = write_sqlite(tmp_path / "c.db", ROWS)
    with pytest.raises(CatalogError, match="cannot read table 'items'"):
        read_catalog(open_catalog(f"sqlite:///{db}", "items", ColumnMap()))
    with pytest.raises(CatalogError, match="not found"):
        read_catalog(open_catalog(str(tmp_path / "none.csv"), "nav_items", ColumnMap()))


def test_mysql_bad_password_is_one_clear_line_without_the_password(mysql_url: str) -> None:
    parts = urlsplit(mysql_url)
    url = f"mysql://nobody:sekrit-pw@{parts.hostname}:{parts.port or 3306}/test"
    with pytest.raises(CatalogError) as info:
        read_catalog(open_catalog(url, "nav_items", ColumnMap()))
    assert "sekrit-pw" not in str(info.value)
    assert "\n" not in str(info.value)


def test_mysql_streams_with_an_unbuffered_cursor(mysql_url: str) -> None:
    rows = [(str(100000 + i), str(200000 + i // 3), f"G-{i // 5:04d}", "t") for i in range(3000)]
    with mysql_table(mysql_url, rows) as table:
        source = open_catalog(mysql_url, table, ColumnMap())
        stream = source.rows(None)
        first = next(stream)
        assert first[0] == "100000"
        conn_cursor = stream.gi_frame.f_locals["cursor"]  # type: ignore[attr-defined]
        assert type(conn_cursor).__name__ == "SSCursor"
        assert sum(1 for _ in stream) == 2999


def test_mysql_password_can_come_from_the_setting(mysql_url: str) -> None:
    parts = urlsplit(mysql_url)
    user = f"bulkimg_{uuid.uuid4().hex[:6]}"
    admin = mysql_table(mysql_url, ROWS)
    with admin as table:
        conn = admin._connect()
        with conn.cursor() as cur:
            cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-from-env'")
            cur.execute(f"GRANT SELECT ON `{parts.path.lstrip('/')}`.* TO '{user}'@'%'")
        conn.commit()
        try:
            url = f"mysql://{user}@{parts.hostname}:{parts.port or 3306}{parts.path}"
            source = open_catalog(url, table, ColumnMap(), mysql_password="pw-from-env")
            assert read_catalog(source).variant_count == len(ROWS) - 3
        finally:
            with conn.cursor() as cur:
                cur.execute(f"DROP USER '{user}'@'%'")
            conn.close()


def test_a_title_column_the_catalog_does_not_have_is_an_error(catalog_url: str) -> None:
    columns = ColumnMap(title="Descr")
    with pytest.raises(CatalogError, match=r"has no column 'Descr' \(BULKIMG_COLUMN_TITLE\)"):
        read_catalog(_open(catalog_url, columns))
