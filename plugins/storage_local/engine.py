"""SQLite through the shared SQL engine: WAL mode, and write transactions that take the lock up front.

``BEGIN IMMEDIATE`` makes a second writer (another task or another process) wait on
``busy_timeout`` instead of failing when its read turns into a write.

Transactions run on the synchronous driver (pysqlite), each whole in one call to a
worker thread: less than half the CPU per call of aiosqlite, which hops to its
thread and back for every cursor operation. Two threads, so a read need not queue
behind a write that waits on another process's lock; this process's writers queue
on the ``one_writer`` gate before they take a thread.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

from grok2api.api import SqlStorage, StorageError

FILE_NAME = "grok2api.db"


class LocalStorage(SqlStorage):
    """``<DATA_DIR>/grok2api.db``, or the file of a ``sqlite:///…`` ``SERVER_STORAGE_URL``."""

    name = "local"
    poll_interval = 0.5
    one_writer = True
    threads = 2
    # deleted rows stay in free pages (and the WAL) until the file is rewritten
    compact_statements = ("VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)")

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
        return URL.create("sqlite+pysqlite", database=str(path))

    def engine_options(self) -> dict[str, Any]:
        # pooled connections move between the worker threads (one transaction at a time each)
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}

    def prepare(self, engine: Engine) -> None:
        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # we emit BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=30000")
            _enter_wal(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # straight to the driver: every transaction begins here, and a statement through
            # SQLAlchemy's execution path costs more than SQLite's work on it
            readonly = conn.get_execution_options().get("g2a_readonly")
            conn.connection.dbapi_connection.execute("BEGIN" if readonly else "BEGIN IMMEDIATE")


def _enter_wal(cursor: Any, attempts: int = 100) -> None:
    """``PRAGMA journal_mode=WAL``, retried: workers opening a new database together race to
    switch it, and SQLite answers the losers "database is locked" at once, busy timeout or not."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05)
