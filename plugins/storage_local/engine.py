"""SQLite through the shared SQL engine: WAL mode, and write transactions that take the lock up front.

``BEGIN IMMEDIATE`` makes a second writer (another task or another process) wait on
``busy_timeout`` instead of failing when its read turns into a write.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from grok2api.storage import StorageError
from grok2api.storage.sql import SqlStorage

FILE_NAME = "grok2api.db"


class LocalStorage(SqlStorage):
    """``<DATA_DIR>/grok2api.db``, or the file of a ``sqlite:///…`` ``SERVER_STORAGE_URL``."""

    name = "local"
    poll_interval = 0.5
    one_writer = True

    def url(self) -> URL:
        raw = self.settings.server.storage_url.strip()
        if raw.startswith("sqlite"):
            url = make_url(raw)
            if not url.database or url.database == ":memory:":
                raise StorageError("SERVER_STORAGE_URL for local storage must name a file: sqlite:///path/grok2api.db")
            path = Path(url.database)
        else:
            path = self.settings.data_dir / FILE_NAME
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"local storage: cannot create data directory {path.parent}: {exc}") from exc
        return URL.create("sqlite+aiosqlite", database=str(path))

    def engine_options(self) -> dict[str, Any]:
        return {"connect_args": {"timeout": 30}}

    def prepare(self, engine: AsyncEngine) -> None:
        @event.listens_for(engine.sync_engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get("g2a_readonly") else "BEGIN IMMEDIATE")
