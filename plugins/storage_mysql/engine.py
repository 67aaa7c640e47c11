"""MySQL and MariaDB through the shared SQL engine (aiomysql); the feed is polled."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from grok2api.api import SqlStorage, StorageError, parse_sql_url

#: deadlock found, lock wait timeout
_RETRY_CODES = {1213, 1205}
#: the named lock held while the schema is checked and upgraded, and how long to wait for it
SCHEMA_LOCK, SCHEMA_LOCK_WAIT = "g2a_schema", 120


class MysqlStorage(SqlStorage):
    name = "mysql"
    # InnoDB rebuilds each table (deleted rows leave its tablespace) once no other transaction
    # reads it: waited for 30 s at most
    compact_statements = ("SET SESSION lock_wait_timeout = 30", "OPTIMIZE TABLE g2a_records, g2a_counters, g2a_changes")

    def url(self) -> URL:
        url = parse_sql_url(self.settings.server.storage_url, engine="mysql", backends=("mysql", "mariadb"),
                            driver="mysql+aiomysql", example="mysql+aiomysql://user:pass@host:3306/grok2api")
        return url.update_query_dict({"charset": "utf8mb4"}) if "charset" not in url.query else url

    def engine_options(self) -> dict[str, Any]:
        return {**super().engine_options(), "connect_args": {"connect_timeout": 10}}

    def retryable(self, exc: DBAPIError) -> bool:
        args: tuple[object, ...] = getattr(exc.orig, "args", ())
        return bool(args) and args[0] in _RETRY_CODES

    @contextlib.contextmanager
    def schema_lock(self, conn: Connection) -> Iterator[None]:
        """A named lock of the connection's session: MySQL commits before each DDL statement,
        so a transaction's row locks would not hold across the upgrade."""
        got = conn.execute(text("SELECT GET_LOCK(:name, :wait)"), {"name": SCHEMA_LOCK, "wait": SCHEMA_LOCK_WAIT})
        if got.scalar() != 1:
            raise StorageError(f"another worker held the schema lock for {SCHEMA_LOCK_WAIT} s; try again")
        try:
            yield
        finally:
            conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": SCHEMA_LOCK})
