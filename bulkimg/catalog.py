"""Read nav_items (MySQL, SQLite or CSV) into product groups of variants; bad rows are reported."""

from __future__ import annotations

import csv
import itertools
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote

from bulkimg.errors import CatalogError
from bulkimg.models import (
    CatalogGroup,
    ImageSkuState,
    RowProblem,
    RowProblemKind,
    Variant,
)
from bulkimg.s3.keys import is_valid_image_sku

if TYPE_CHECKING:
    import pymysql
    import pymysql.cursors

    from bulkimg.config import Settings


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Which catalog columns hold what. `title` is optional ("" disables it)."""

    sku: str = "No_"
    image_sku: str = "Image_SKU"
    group: str = "Web_Product_Group_ID"
    title: str = "Description"
    order: str = "No_"

    def required(self) -> list[str]:
        return list(dict.fromkeys([self.sku, self.image_sku, self.group, self.order]))


RawRow = tuple[object, object, object, object]  # sku, image_sku, group, title
_FIELDS = ("sku", "image_sku", "group", "title")


@dataclass(frozen=True, slots=True)
class BadRecord:
    """A record the source could not split into fields (e.g. a CSV field over the size limit)."""

    reason: str


class CatalogSource(Protocol):
    """Yields (sku, image_sku, group, title) rows, ordered by group, then the order column."""

    def rows(self, group_ids: Sequence[str] | None) -> Iterator[RawRow | BadRecord]: ...


@dataclass(slots=True)
class Catalog:
    """The groups read from a catalog, and every row that could not be used."""

    groups: list[CatalogGroup]
    problems: list[RowProblem] = field(default_factory=list)
    rows_read: int = 0

    @property
    def variant_count(self) -> int:
        return sum(len(g.variants) for g in self.groups)


def open_settings_catalog(settings: Settings) -> CatalogSource:
    """The catalog the settings name (URL, table, columns, MySQL password)."""
    columns = ColumnMap(
        settings.column_sku,
        settings.column_image_sku,
        settings.column_group,
        settings.column_title,
        settings.column_order,
    )
    password = settings.mysql_password.get_secret_value() if settings.mysql_password else None
    return open_catalog(settings.catalog or "", settings.table, columns, password)


def open_catalog(
    url: str, table: str, columns: ColumnMap, mysql_password: str | None = None
) -> CatalogSource:
    """Pick the source for `url`: mysql://…, sqlite:///path, or a path to a .csv file."""
    scheme = url.partition("://")[0].lower() if "://" in url else ""  # urlsplit may raise
    if scheme in ("mysql", "mysql+pymysql", "mariadb"):
        return MySQLSource(url, table, columns, mysql_password)
    if scheme == "sqlite":
        return SQLiteSource(Path(url.split("://", 1)[1].removeprefix("/")), table, columns)
    if url.lower().endswith(".csv"):
        return CSVSource(Path(url), columns)
    raise CatalogError(
        "catalog must be mysql://user@host:port/db, sqlite:///path.db or a .csv file"
        f" (got {redact_catalog_url(url)})"
    )


def read_catalog(source: CatalogSource, group_ids: Sequence[str] | None = None) -> Catalog:
    """Group rows into products; variants keep the source's order, groups sort by id."""
    groups: dict[str, CatalogGroup] = {}
    seen_skus: set[str] = set()
    catalog = Catalog(groups=[])
    for row_number, raw in enumerate(source.rows(group_ids), start=1):
        catalog.rows_read = row_number
        if isinstance(raw, BadRecord):
            kind = RowProblemKind.UNPARSEABLE
            catalog.problems.append(RowProblem(kind, "", "", "", row_number, raw.reason))
            continue
        variant_or_problem = _to_variant(raw, row_number, seen_skus)
        if isinstance(variant_or_problem, RowProblem):
            catalog.problems.append(variant_or_problem)
            continue
        group = groups.setdefault(
            variant_or_problem.group_id, CatalogGroup(variant_or_problem.group_id)
        )
        group.variants.append(variant_or_problem)
    for wanted in group_ids or ():
        if wanted not in groups:
            catalog.problems.append(RowProblem(RowProblemKind.UNKNOWN_GROUP, wanted, "", "", 0))
    catalog.groups = [groups[g] for g in sorted(groups)]
    return catalog


def _decode(raw: bytes) -> str:
    """UTF-8, with each invalid byte kept as a lone surrogate so the row can be rejected."""
    return raw.decode("utf-8", "surrogateescape")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = _decode(value)
    return str(value).strip()


def _not_utf8(text: str) -> bool:
    return not text.isascii() and any("\ud800" <= c <= "\udfff" for c in text)


def _to_variant(raw: RawRow, row: int, seen_skus: set[str]) -> Variant | RowProblem:
    sku, image_sku, group, title = values = [_text(v) for v in raw]
    bad = [name for name, text in zip(_FIELDS, values, strict=True) if _not_utf8(text)]
    if bad:  # such text cannot be written to JSON, a log or Shopify
        return RowProblem(RowProblemKind.NOT_UTF8, group, sku, image_sku, row, ", ".join(bad))
    if not group:
        return RowProblem(RowProblemKind.NO_GROUP, group, sku, image_sku, row)
    if not sku:
        return RowProblem(RowProblemKind.NO_SKU, group, sku, image_sku, row)
    if sku in seen_skus:
        return RowProblem(RowProblemKind.DUPLICATE_SKU, group, sku, image_sku, row)
    seen_skus.add(sku)
    if not image_sku:
        state = ImageSkuState.EMPTY
    elif is_valid_image_sku(image_sku):
        state = ImageSkuState.OK
    else:
        state = ImageSkuState.INVALID
    return Variant(sku, group, image_sku, state, title or None)


@dataclass(frozen=True, slots=True)
class MySQLTarget:
    """Where a mysql:// catalog URL points. `display` is the URL with its password as ***."""

    host: str
    port: int
    user: str
    password: str | None
    database: str | None
    display: str


def parse_mysql_url(url: str) -> MySQLTarget:
    """mysql://user:password@host:port/db, the password taken whole whatever it holds.

    urlsplit stops the user part at the first `/`, `?` or `#`, so a password holding one became
    the host and port (a ValueError quoting it). The user part here ends at the last `@`; user,
    password and database are percent-decoded (a password may be given raw or encoded).
    """
    rest = url.partition("://")[2]
    userinfo, at, location = rest.rpartition("@")
    if not at:
        userinfo, location = "", rest
    user, colon, password = userinfo.partition(":")
    location = location.split("?", 1)[0].split("#", 1)[0]
    hostport, _, database = location.partition("/")
    host, port = hostport, ""
    if hostport.startswith("["):  # [IPv6]:port
        host, _, after = hostport[1:].partition("]")
        port = after.removeprefix(":")
    elif ":" in hostport:
        host, _, port = hostport.rpartition(":")
    shown = redact_catalog_url(url)
    if port and not port.isdigit():
        raise CatalogError(f"catalog URL {shown}: the port must be a number")
    return MySQLTarget(
        host=host or "127.0.0.1",
        port=int(port) if port else 3306,
        user=unquote(user) or "root",
        password=unquote(password) if colon else None,
        database=unquote(database) or None,
        display=shown,
    )


def redact_catalog_url(url: str) -> str:
    """The URL with its password (all of the user part after the first `:`) as ***."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, location = rest.rpartition("@")
    if not sep or not at:
        return url
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{location}"


def _no_title(where: str, title: str) -> str:
    return (
        f"{where} has no column {title!r} (BULKIMG_COLUMN_TITLE): name the title column, or set"
        " it empty to title new products by their group id"
    )


class _SQLSource:
    """Shared query building for SQL sources; subclasses know quoting and connections."""

    quote_char = '"'

    def __init__(self, table: str, columns: ColumnMap) -> None:
        self.table = table
        self.columns = columns

    def _q(self, name: str) -> str:
        q = self.quote_char
        return q + name.replace(q, q + q) + q

    def _select(self, present: set[str], group_ids: Sequence[str] | None, mark: str) -> str:
        missing = [c for c in self.columns.required() if c not in present]
        if missing:
            raise CatalogError(f"catalog table {self.table!r} has no column {missing[0]!r}")
        cols = self.columns
        if cols.title and cols.title not in present:
            raise CatalogError(_no_title(f"catalog table {self.table!r}", cols.title))
        title = self._q(cols.title) if cols.title else "NULL"
        sql = (
            f"SELECT {self._q(cols.sku)}, {self._q(cols.image_sku)}, {self._q(cols.group)},"
            f" {title} FROM {self._q(self.table)}"
        )
        if group_ids:
            sql += f" WHERE {self._q(cols.group)} IN ({', '.join([mark] * len(group_ids))})"
        return sql + f" ORDER BY {self._q(cols.group)}, {self._q(cols.order)}"


class MySQLSource(_SQLSource):
    """nav_items in MySQL/MariaDB, streamed with an unbuffered cursor."""

    quote_char = "`"

    def __init__(
        self, url: str, table: str, columns: ColumnMap, password: str | None = None
    ) -> None:
        super().__init__(table, columns)
        target = parse_mysql_url(url)
        self._host = target.host
        self._port = target.port
        self._user = target.user
        self._password = target.password if target.password else (password or "")
        self._database = target.database
        self._display = target.display

    def _connect(self) -> pymysql.connections.Connection[pymysql.cursors.SSCursor]:
        import pymysql  # only a MySQL catalog needs it
        import pymysql.cursors

        try:
            return pymysql.connections.Connection(
                host=self._host,
                port=self._port,
                user=self._user,
                password=self._password.encode("utf-8"),  # pymysql would take latin-1 only
                database=self._database,
                charset="utf8mb4",
                cursorclass=pymysql.cursors.SSCursor,
                connect_timeout=10,
            )
        except pymysql.err.MySQLError as exc:
            raise CatalogError(f"cannot connect to catalog {self._display}: {exc}") from None

    def rows(self, group_ids: Sequence[str] | None) -> Iterator[RawRow]:
        import pymysql

        conn = self._connect()
        try:
            with conn.cursor() as cursor:
                try:
                    cursor.execute(f"SELECT * FROM {self._q(self.table)} LIMIT 0")
                except pymysql.err.MySQLError as exc:
                    raise CatalogError(f"cannot read table {self.table!r}: {exc}") from None
                present = {d[0] for d in cursor.description or ()}
                cursor.fetchall()
                cursor.execute(self._select(present, group_ids, "%s"), list(group_ids or ()))
                for row in cursor:
                    yield row[0], row[1], row[2], row[3]
        finally:
            conn.close()


class SQLiteSource(_SQLSource):
    """nav_items in an SQLite file."""

    def __init__(self, path: Path, table: str, columns: ColumnMap) -> None:
        super().__init__(table, columns)
        self.path = path

    def rows(self, group_ids: Sequence[str] | None) -> Iterator[RawRow]:
        if not self.path.is_file():
            raise CatalogError(f"catalog database not found: {self.path}")
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        conn.text_factory = _decode  # invalid UTF-8 is one bad row, not an exception
        try:
            try:
                cursor = conn.execute(f"SELECT * FROM {self._q(self.table)} LIMIT 0")
            except sqlite3.Error as exc:
                raise CatalogError(f"cannot read table {self.table!r}: {exc}") from None
            present = {d[0] for d in cursor.description}
            for row in conn.execute(self._select(present, group_ids, "?"), list(group_ids or ())):
                yield row[0], row[1], row[2], row[3]
        finally:
            conn.close()


class CSVSource:
    """nav_items exported as CSV with a header row (sorted here: a file has no ORDER BY)."""

    def __init__(self, path: Path, columns: ColumnMap) -> None:
        self.path = path
        self.columns = columns

    def rows(self, group_ids: Sequence[str] | None) -> Iterator[RawRow | BadRecord]:
        if not self.path.is_file():
            raise CatalogError(f"catalog file not found: {self.path}")
        cols = self.columns
        wanted = set(group_ids) if group_ids else None
        bad: list[BadRecord] = []
        with self.path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
            reader = csv.DictReader(handle)
            present = set(reader.fieldnames or ())
            missing = [c for c in cols.required() if c not in present]
            if missing:
                raise CatalogError(f"catalog file {self.path} has no column {missing[0]!r}")
            if cols.title and cols.title not in present:
                raise CatalogError(_no_title(f"catalog file {self.path}", cols.title))
            has_title = bool(cols.title)
            rows = [
                r
                for r in _records(reader, bad)
                if wanted is None or (r.get(cols.group) or "").strip() in wanted
            ]
        yield from bad
        rows.sort(key=lambda r: ((r.get(cols.group) or "").strip(), r.get(cols.order) or ""))
        for r in rows:
            title = r.get(cols.title) if has_title else None
            yield r.get(cols.sku), r.get(cols.image_sku), r.get(cols.group), title


def _records(reader: csv.DictReader[str], bad: list[BadRecord]) -> Iterator[dict[str, str]]:
    """The reader's records; one it cannot parse goes to `bad` and reading goes on."""
    for number in itertools.count(1):  # data records, the header not counted
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            bad.append(BadRecord(f"record {number} of the file: {exc}"))
