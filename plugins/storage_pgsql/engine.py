"""PostgreSQL through the shared SQL engine (asyncpg), with LISTEN/NOTIFY for the change feed.

Each write transaction sends ``NOTIFY g2a_changes``; PostgreSQL delivers it on commit,
so a worker waiting on the feed wakes as soon as the change is visible. A dedicated
connection listens; if it drops, the feed is polled until it is back.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError

from grok2api.api import Change, SqlStorage, logger, parse_sql_url

CHANNEL = "g2a_changes"
#: the transaction-scoped advisory lock held while the schema is checked and upgraded
SCHEMA_LOCK = 0x6732615F736368  # "g2a_sch"
#: serialization failure, deadlock detected, lock not available
_RETRY_STATES = {"40001", "40P01", "55P03"}
_LISTEN_POLL, _FALLBACK_POLL, _RECONNECT_EVERY = 5.0, 1.0, 5.0


class PgsqlStorage(SqlStorage):
    name = "pgsql"
    # VACUUM FULL writes each table anew (old row versions leave its files) once no other
    # transaction reads it: waited for 30 s at most
    compact_statements = ("SET lock_timeout = '30s'",
                          *(f"VACUUM FULL {table}" for table in ("g2a_records", "g2a_counters", "g2a_changes")))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listener: asyncpg.Connection | None = None
        self._listen_tried = 0.0

    def url(self) -> URL:
        url = parse_sql_url(self.settings.server.storage_url, engine="pgsql",
                            backends=("postgresql", "postgres", "pgsql"), driver="postgresql+asyncpg",
                            example="postgresql+asyncpg://user:pass@host:5432/grok2api")
        if "sslmode" in url.query:  # libpq's name; asyncpg calls it ssl
            url = url.difference_update_query(["sslmode"]).update_query_dict({"ssl": url.query["sslmode"]})
        return url

    def engine_options(self) -> dict[str, Any]:
        return {**super().engine_options(), "connect_args": {"timeout": 10}}

    def retryable(self, exc: DBAPIError) -> bool:
        return getattr(exc.orig, "sqlstate", None) in _RETRY_STATES

    @contextlib.contextmanager
    def schema_lock(self, conn: Connection) -> Iterator[None]:
        """PostgreSQL's DDL is transactional: the lock ends with the upgrade's commit."""
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": SCHEMA_LOCK})
        yield

    async def open(self) -> None:
        await super().open()
        await self._listen()

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None and not listener.is_closed():
            await listener.close(timeout=5)
        await super().close()

    def after_write(self, conn: Connection, end: int) -> None:
        conn.execute(text("SELECT pg_notify(:channel, :seq)"), {"channel": CHANNEL, "seq": str(end)})

    async def wait_for_changes(self, seq: int, timeout: float) -> list[Change]:
        if self._listener is None or self._listener.is_closed():
            if time.monotonic() - self._listen_tried >= _RECONNECT_EVERY:
                await self._listen()
        listening = self._listener is not None and not self._listener.is_closed()
        self.poll_interval = _LISTEN_POLL if listening else _FALLBACK_POLL
        return await super().wait_for_changes(seq, timeout)

    async def _listen(self) -> None:
        self._listen_tried = time.monotonic()
        url = self.url()
        ssl: Any = url.query.get("ssl")  # passed on as SQLAlchemy's asyncpg dialect does; asyncpg checks it
        try:
            self._listener = await asyncpg.connect(
                host=url.host, port=url.port, user=url.username, password=url.password, database=url.database,
                ssl=ssl, timeout=10)
            await self._listener.add_listener(CHANNEL, self._notified)
        except (OSError, asyncpg.PostgresError) as exc:
            logger.warning("storage: pgsql LISTEN unavailable, polling the change feed instead: {}", exc)
            self._listener = None

    def _notified(self, *_args: Any) -> None:
        if self._waiter is not None:
            self._waiter.notify()
