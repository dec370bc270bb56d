"""A nav_items table made in MariaDB for a test (its columns and rows), dropped afterwards."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import pymysql

COLUMNS = ("No_", "Image_SKU", "Web_Product_Group_ID", "Description")


ROWS = [
    ("827753", "827749", "LGD-101792", "Solitaire Ring"),
    ("827748", " 827749 ", "LGD-101792", "Solitaire Ring"),
    ("800761", "799057", "LGD-100040", "Tennis Bracelet"),
    ("800762", None, "LGD-100040", "Tennis Bracelet"),
    ("800763", "82/77/49", "LGD-100040", "Tennis Bracelet"),
    ("827748", "999999", "MMM-1", "Duplicate of an earlier SKU"),
    ("498111", "498100", "GID-100288", "Halo Pendant"),
    ("", "498100", "GID-100288", "no SKU"),
    ("498112", "498100", "", "no group"),
]


class mysql_table:  # noqa: N801 - used as a context manager like a function
    """A uniquely named nav_items-shaped table in the test database, dropped afterwards."""

    def __init__(self, url: str, rows: list[tuple[object, ...]]) -> None:
        self.url, self.rows = url, rows
        self.name = f"nav_items_{uuid.uuid4().hex[:8]}"

    def _connect(self) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
        parts = urlsplit(self.url)
        return pymysql.connections.Connection(
            host=parts.hostname, port=parts.port or 3306, user=parts.username or "root",
            password=parts.password or "", database=parts.path.lstrip("/"),
        )  # fmt: skip

    def __enter__(self) -> str:
        conn = self._connect()
        with conn.cursor() as cur:
            cols = ", ".join(f"`{c}` VARCHAR(64) NULL" for c in COLUMNS)
            cur.execute(f"CREATE TABLE `{self.name}` (id INT AUTO_INCREMENT PRIMARY KEY, {cols})")
            cur.executemany(
                f"INSERT INTO `{self.name}` (No_, Image_SKU, Web_Product_Group_ID, Description)"
                " VALUES (%s,%s,%s,%s)",
                self.rows,
            )
        conn.commit()
        conn.close()
        return self.name

    def __exit__(self, *exc: object) -> None:
        conn = self._connect()
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE IF EXISTS `{self.name}`")
        conn.commit()
        conn.close()
