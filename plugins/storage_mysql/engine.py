"""MySQL and MariaDB through the shared SQL engine (aiomysql); the feed is polled."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from grok2api.api import SqlStorage, parse_sql_url

#: deadlock found, lock wait timeout
_RETRY_CODES = {1213, 1205}


class MysqlStorage(SqlStorage):
    name = "mysql"

    def url(self) -> URL:
        url = parse_sql_url(self.settings.server.storage_url, engine="mysql", backends=("mysql", "mariadb"),
                            driver="mysql+aiomysql", example="mysql+aiomysql://user:pass@host:3306/grok2api")
        return url.update_query_dict({"charset": "utf8mb4"}) if "charset" not in url.query else url

    def engine_options(self) -> dict[str, Any]:
        return {**super().engine_options(), "connect_args": {"connect_timeout": 10}}

    def retryable(self, exc: DBAPIError) -> bool:
        args: tuple[object, ...] = getattr(exc.orig, "args", ())
        return bool(args) and args[0] in _RETRY_CODES
