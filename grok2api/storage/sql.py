"""One SQLAlchemy implementation of :class:`~grok2api.storage.Storage` for SQLite, PostgreSQL and MySQL.

The engine plugins subclass :class:`SqlStorage` only to build their URL, tune the
connection and (PostgreSQL) notify other workers. Every write runs in one
transaction that also appends to the change feed; the feed counter row is locked
last, so sequence numbers follow commit order on every database.

Every transaction body is a plain function of a synchronous
:class:`~sqlalchemy.engine.Connection`. PostgreSQL and MySQL run it on their async
driver (``run_sync``); SQLite runs it whole in one worker-thread call on the sync
driver (:class:`ThreadedEngine`): aiosqlite's thread round trip per cursor operation
and SQLAlchemy's greenlet per statement cost more CPU than the database work.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    delete,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Engine, Result, create_engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from grok2api.config.settings import Settings
from grok2api.logs.logger import logger
from grok2api.storage import (
    JSON,
    MAX_FIELD_LEN,
    Change,
    LogEntry,
    Storage,
    StorageError,
    check_name,
    check_ns,
    decode,
    encode,
    feed_reset,
    merge,
    now_ms,
)
from grok2api.storage.feed import FeedWaiter

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")


def _name(length: int) -> String:
    """A case-sensitive name column (MySQL compares strings case-insensitively by default)."""
    return String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb")


_DOC = Text().with_variant(mysql.LONGTEXT(charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb")
_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements only INTEGER PRIMARY KEY

metadata = MetaData()
meta = Table(
    "g2a_meta", metadata,
    Column("name", _name(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
records = Table(
    "g2a_records", metadata,
    Column("ns", _name(128), primary_key=True),
    Column("key", _name(512), primary_key=True),
    Column("data", _DOC, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    Column("updated_at", BigInteger, nullable=False),
    Index("g2a_records_expiry", "expires_at"),
)
counters = Table(
    "g2a_counters", metadata,
    Column("ns", _name(128), primary_key=True),
    Column("key", _name(512), primary_key=True),
    Column("field", _name(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
locks = Table(
    "g2a_locks", metadata,
    Column("name", _name(512), primary_key=True),
    Column("owner", _name(512), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)
logs = Table(
    "g2a_log", metadata,
    Column("seq", _ID, primary_key=True, autoincrement=True),
    Column("stream", _name(128), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("data", _DOC, nullable=False),
    Index("g2a_log_stream", "stream", "seq"),
)
changes = Table(
    "g2a_changes", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("ns", _name(128), nullable=False),
    Column("key", _name(512), nullable=False),
    Column("op", String(16), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("origin", String(16), nullable=True),  # the writing Storage.origin (NULL: not known)
)

#: rows of ``g2a_meta``
SCHEMA_VERSION, FEED_SEQ, FEED_TRIMMED = "schema_version", "feed_seq", "feed_trimmed"
#: the feed is trimmed (and expired records purged) once every this many changes
_HOUSEKEEPING_EVERY = 256
_CHUNK = 500
_MISSING = object()


def parse_sql_url(raw: str, *, engine: str, backends: Sequence[str], driver: str, example: str) -> URL:
    """``SERVER_STORAGE_URL`` as a SQLAlchemy URL for ``driver``; any other driver suffix is replaced."""
    if not raw.strip():
        raise StorageError(f"SERVER_STORAGE_URL is required with SERVER_STORAGE_TYPE={engine}, e.g. {example}")
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError) as exc:
        raise StorageError(f"SERVER_STORAGE_URL is not a valid {engine} URL ({exc}); expected e.g. {example}") from None
    if url.get_backend_name() not in backends:
        raise StorageError(f"SERVER_STORAGE_URL scheme {url.drivername!r} does not fit SERVER_STORAGE_TYPE={engine}; "
                           f"expected e.g. {example}")
    if not url.database:
        raise StorageError(f"SERVER_STORAGE_URL names no database; expected e.g. {example}")
    return url.set(drivername=driver)


def _tables(conn: Connection) -> None:
    """Layout v1: every table that is missing, in the shape this code writes."""
    metadata.create_all(conn)


def _feed_origin(conn: Connection) -> None:
    """Layout v2: changes name their writer (``Storage.origin``); older rows hold NULL.
    Databases of the first release got the column, unversioned, when opened since it came."""
    if "origin" not in {column["name"] for column in inspect(conn).get_columns(changes.name)}:
        conn.execute(text(f"ALTER TABLE {changes.name} ADD COLUMN origin VARCHAR(16)"))


#: the layout's steps, applied in order to a database at an older ``schema_version``; a
#: new step is appended here (never inserted or changed) and must be safe to run twice
SCHEMA_STEPS: tuple[tuple[str, Callable[[Connection], None]], ...] = (
    ("tables", _tables),
    ("feed origin", _feed_origin),
)


def _live(table: Table, now: int | ColumnElement[int]) -> ColumnElement[bool]:
    return or_(table.c.expires_at.is_(None), table.c.expires_at > now)


# Statements of the frequent calls (quota claims, counter reads, the pool's writer, the
# change feed), built once with bound parameters: building a statement per call was about
# 40 % of an ``incr``'s CPU, and an UPDATE per row becomes one ``executemany``.
_LOCK_COUNTERS = (select(counters.c.key, counters.c.field, counters.c.value)
                  .where(counters.c.ns == bindparam("ns"), counters.c.key.in_(bindparam("keys", expanding=True)))
                  .order_by(counters.c.key, counters.c.field).with_for_update())
_ADD_TO_COUNTER = (update(counters)
                   .where(counters.c.ns == bindparam("at_ns"), counters.c.key == bindparam("at_key"),
                          counters.c.field == bindparam("at_field"))
                   .values(value=counters.c.value + bindparam("delta")))
_READ_COUNTERS = select(counters.c.field, counters.c.value).where(counters.c.ns == bindparam("ns"),
                                                                   counters.c.key == bindparam("key"))
_LOCK_RECORDS = (select(records.c.key, records.c.data)
                 .where(records.c.ns == bindparam("ns"), records.c.key.in_(bindparam("keys", expanding=True)),
                        _live(records, bindparam("now")))
                 .order_by(records.c.key).with_for_update())
_SET_RECORD = (update(records).where(records.c.ns == bindparam("at_ns"), records.c.key == bindparam("at_key"))
               .values(data=bindparam("new_data"), updated_at=bindparam("new_at")))
_ADVANCE_FEED = update(meta).where(meta.c.name == FEED_SEQ).values(value=meta.c.value + bindparam("count"))
_FEED_END = select(meta.c.value).where(meta.c.name == FEED_SEQ)
_FEED_MARKS = select(meta.c.name, meta.c.value).where(meta.c.name.in_([FEED_SEQ, FEED_TRIMMED]))
_CHANGES_AFTER = (select(changes.c.seq, changes.c.ns, changes.c.key, changes.c.op, changes.c.origin)
                  .where(changes.c.seq > bindparam("seq")).order_by(changes.c.seq).limit(bindparam("limit")))


class ThreadedEngine:
    """A synchronous engine whose every transaction runs whole in one call to a worker thread."""

    def __init__(self, sync_engine: Engine, executor: ThreadPoolExecutor) -> None:
        self.sync_engine = sync_engine
        self._executor = executor

    def execution_options(self, **options: Any) -> ThreadedEngine:
        """The same pool and threads, connections with these options (dispose only the original)."""
        return ThreadedEngine(self.sync_engine.execution_options(**options), self._executor)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` in a worker thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def run(self, work: Callable[[Connection], T], *, commit: bool) -> T:
        """``work`` in one transaction and one thread hop; committed if ``commit``, else rolled back."""
        return await self.call(self._transaction, work, commit)

    def _transaction(self, work: Callable[[Connection], T], commit: bool) -> T:
        with self.sync_engine.connect() as conn:  # closing rolls back what is not committed
            result = work(conn)
            if commit:
                conn.commit()
            return result

    async def dispose(self) -> None:
        """Close the pooled connections, then let the threads finish what they run and exit."""
        try:
            await self.call(self.sync_engine.dispose)
        finally:
            self._executor.shutdown(wait=False)


class SqlStorage(Storage):
    """The shared engine; subclasses provide :meth:`url` and may tune the rest."""

    #: seconds between feed polls when nothing notifies
    poll_interval: float = 1.0
    #: write transactions retried on deadlocks, lock timeouts and unique-key races
    write_attempts: int = 8
    #: the database takes one writer at a time (SQLite): this process queues its own
    #: writers on a lock instead of in the database's sleeping busy handler
    one_writer: bool = False
    #: > 0: run transactions on the URL's synchronous driver in this many worker threads
    #: (:class:`ThreadedEngine`) instead of on its async driver
    threads: int = 0
    schema_version = len(SCHEMA_STEPS)
    #: run in order on one connection outside a transaction by :meth:`compact`, to rewrite
    #: the tables without freed space (best effort: a failure is logged)
    compact_statements: tuple[str, ...] = ()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: AsyncEngine | ThreadedEngine | None = None
        self._reader: AsyncEngine | ThreadedEngine | None = None
        self._waiter: FeedWaiter | None = None
        self._gate: contextlib.AbstractAsyncContextManager[Any] = contextlib.nullcontext()

    # subclass points -------------------------------------------------------
    def url(self) -> URL:
        """The SQLAlchemy URL to connect to; raise :class:`StorageError` when the setting is wrong."""
        raise NotImplementedError

    def engine_options(self) -> dict[str, Any]:
        return {"pool_pre_ping": True, "pool_recycle": 3600}

    def prepare(self, engine: Engine) -> None:
        """Hook for connection events (on the synchronous engine), before the first connection."""

    def after_write(self, conn: Connection, end: int) -> None:
        """Runs inside a write transaction that appended changes up to ``end``."""

    def retryable(self, exc: DBAPIError) -> bool:
        """Deadlocks and lock timeouts of this database (the write is then run again)."""
        return False

    # lifecycle ---------------------------------------------------------------
    @property
    def engine(self) -> AsyncEngine | ThreadedEngine:
        if self._engine is None:
            raise StorageError(f"{self.name} storage is not open")
        return self._engine

    async def open(self) -> None:
        url = self.url()
        where = url.render_as_string(hide_password=True)
        engine: AsyncEngine | ThreadedEngine
        if self.threads:
            sync_engine = create_engine(url, **self.engine_options())
            executor = ThreadPoolExecutor(self.threads, thread_name_prefix=f"g2a-{self.name}")
            engine = ThreadedEngine(sync_engine, executor)
        else:
            from sqlalchemy.ext.asyncio import create_async_engine  # and the ORM it needs: not for SQLite

            engine = create_async_engine(url, **self.engine_options())
            sync_engine = engine.sync_engine
        self.prepare(sync_engine)
        self._engine = engine
        self._reader = engine.execution_options(g2a_readonly=True)
        try:
            await self._create_schema()
        except Exception as exc:  # the drivers raise OSError, their own errors or SQLAlchemy's
            self._engine = self._reader = None
            await engine.dispose()
            if isinstance(exc, StorageError):
                raise
            raise StorageError(f"{self.name} storage at {where} cannot be opened: {exc}") from exc
        self._waiter = FeedWaiter()
        if self.one_writer:
            self._gate = asyncio.Lock()
        logger.info("storage: {} at {} (schema v{})", self.name, where, self.schema_version)

    async def _create_schema(self) -> None:
        """Bring the tables to :attr:`schema_version`, one step at a time, in one transaction
        under :meth:`schema_lock`, so workers starting together migrate once."""
        stored, applied = await self.transaction(self._upgrade)
        if stored > self.schema_version:
            raise StorageError(f"the {self.name} database has schema version {stored}, newer than this "
                               f"grok2api understands ({self.schema_version}); upgrade grok2api")
        for version in applied:
            logger.info("storage: {} schema upgraded to v{} ({})", self.name, version, SCHEMA_STEPS[version - 1][0])

    def _upgrade(self, conn: Connection) -> tuple[int, list[int]]:
        """The stored version before, and the versions applied now."""
        with self.schema_lock(conn):
            stored = 0
            if inspect(conn).has_table(meta.name):
                row = conn.execute(select(meta.c.value).where(meta.c.name == SCHEMA_VERSION)).first()
                stored = 0 if row is None else int(row[0])
            _tables(conn)  # a table missing from any version is made whole, in its latest shape
            applied = list(range(stored + 1, self.schema_version + 1))
            for version in applied:
                SCHEMA_STEPS[version - 1][1](conn)
            if applied:
                self._insert_ignore(conn, meta, [{"name": SCHEMA_VERSION, "value": 0}])
                conn.execute(update(meta).where(meta.c.name == SCHEMA_VERSION).values(value=applied[-1]))
            self._insert_ignore(conn, meta, [{"name": FEED_SEQ, "value": 0}, {"name": FEED_TRIMMED, "value": 0}])
            return stored, applied

    def schema_lock(self, conn: Connection) -> contextlib.AbstractContextManager[None]:
        """Held while the schema is checked and upgraded, so one worker migrates and the
        others then find it done. SQLite's ``BEGIN IMMEDIATE`` already takes the write lock."""
        return contextlib.nullcontext()

    async def close(self) -> None:
        engine, self._engine, self._reader = self._engine, None, None
        if engine is not None:
            await engine.dispose()

    # transactions ------------------------------------------------------------
    async def transaction(self, work: Callable[[Connection], T]) -> T:
        """``work`` (a function of a SQLAlchemy connection) in one write transaction,
        committed when it returns. The storage's own writes go through :meth:`_write`;
        this is also the door for tests and tools that reach into the tables."""
        return await self._run(self.engine, work, commit=True)

    async def _run_read(self, work: Callable[[Connection], T]) -> T:
        """``work`` on a read-only connection (SQLite starts no write lock for it), rolled back after."""
        if self._reader is None:
            raise StorageError(f"{self.name} storage is not open")
        return await self._run(self._reader, work, commit=False)

    @staticmethod
    async def _run(engine: AsyncEngine | ThreadedEngine, work: Callable[[Connection], T], *, commit: bool) -> T:
        if isinstance(engine, ThreadedEngine):
            return await engine.run(work, commit=commit)
        async with engine.begin() if commit else engine.connect() as conn:
            return await conn.run_sync(work)

    async def _write(self, work: Callable[[Connection], T], *, feed: bool = False) -> T:
        """Run ``work`` in a write transaction (again on a race); ``feed``: it appends
        changes, so this worker's feed readers are woken after the commit."""
        for attempt in range(self.write_attempts):
            try:
                async with self._gate:
                    result = await self.transaction(work)
                break
            except DBAPIError as exc:
                race = isinstance(exc, IntegrityError) or self.retryable(exc)
                if not race or attempt == self.write_attempts - 1:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        if feed and self._waiter is not None:
            self._waiter.notify()
        return result

    def _insert_ignore(self, conn: Connection, table: Table, rows: list[JSON]) -> None:
        if conn.dialect.name in ("mysql", "mariadb"):
            conn.execute(mysql.insert(table).prefix_with("IGNORE"), rows)
        else:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            conn.execute(dialect.insert(table).on_conflict_do_nothing(), rows)

    def _upsert_records(self, conn: Connection, rows: list[JSON]) -> None:
        columns = ("data", "expires_at", "updated_at")
        if conn.dialect.name in ("mysql", "mariadb"):
            stmt = mysql.insert(records)
            stmt = stmt.on_duplicate_key_update({c: stmt.inserted[c] for c in columns})
        else:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(records)
            stmt = stmt.on_conflict_do_update(index_elements=["ns", "key"],
                                              set_={c: stmt.excluded[c] for c in columns})
        conn.execute(stmt, rows)

    def _append_changes(self, conn: Connection, ns: str, keys: Sequence[str], op: str) -> None:
        """Append to the feed inside the caller's transaction; the counter row lock orders commits."""
        if not keys:
            return
        count = len(keys)
        conn.execute(_ADVANCE_FEED, {"count": count})
        end = conn.execute(_FEED_END).scalar_one()
        now = now_ms()
        conn.execute(insert(changes), [
            {"seq": end - count + i + 1, "ns": ns, "key": key, "op": op, "at_ms": now, "origin": self.origin}
            for i, key in enumerate(keys)])
        if end // _HOUSEKEEPING_EVERY != (end - count) // _HOUSEKEEPING_EVERY:
            self._housekeeping(conn, end, now)
        self.after_write(conn, end)

    def _housekeeping(self, conn: Connection, end: int, now: int) -> None:
        cut = end - self.feed_max
        if cut > 0:
            conn.execute(delete(changes).where(changes.c.seq <= cut))
            conn.execute(update(meta).where(meta.c.name == FEED_TRIMMED).values(value=cut))
        conn.execute(delete(records).where(records.c.expires_at <= now))

    # records -----------------------------------------------------------------
    async def get(self, ns: str, key: str) -> JSON | None:
        return (await self.get_many(ns, [key])).get(key)

    async def get_many(self, ns: str, keys: Sequence[str]) -> dict[str, JSON]:
        check_ns(ns)
        now = now_ms()
        wanted = sorted({check_name(k) for k in keys})

        def work(conn: Connection) -> dict[str, JSON]:
            found: dict[str, JSON] = {}
            for start in range(0, len(wanted), _CHUNK):
                rows = conn.execute(select(records.c.key, records.c.data).where(
                    records.c.ns == ns, records.c.key.in_(wanted[start:start + _CHUNK]), _live(records, now)))
                found.update(self._decoded(ns, rows))
            return found

        return await self._run_read(work)

    async def list(self, ns: str, *, prefix: str = "") -> dict[str, JSON]:
        check_ns(ns)
        query = select(records.c.key, records.c.data).where(records.c.ns == ns, _live(records, now_ms()))
        if prefix:
            query = query.where(records.c.key.startswith(prefix, autoescape=True))
        return await self._run_read(lambda conn: self._decoded(ns, conn.execute(query.order_by(records.c.key))))

    async def namespaces(self) -> builtins.list[str]:
        query = select(records.c.ns).where(_live(records, now_ms())).distinct().order_by(records.c.ns)
        return await self._run_read(lambda conn: list(conn.execute(query).scalars()))

    @staticmethod
    def _decoded(ns: str, result: Result[str, Any]) -> dict[str, JSON]:
        """The records of ``(key, data)`` rows, fetched in one call: row by row, SQLAlchemy's
        async adapter costs a third of a second per 100,000 on PostgreSQL."""
        out = {}
        for key, raw in result.all():
            data = decode(raw, ns, key)
            if data is not None:
                out[key] = data
        return out

    async def put(self, ns: str, key: str, data: JSON, *, ttl: float | None = None) -> None:
        await self._put_rows(ns, {key: data}, ttl)

    async def put_many(self, ns: str, items: Mapping[str, JSON]) -> None:
        await self._put_rows(ns, items, None)

    async def _put_rows(self, ns: str, items: Mapping[str, JSON], ttl: float | None) -> None:
        check_ns(ns)
        now = now_ms()
        expires = None if ttl is None else now + int(ttl * 1000)
        keys = [check_name(key) for key in sorted(items)]
        rows = [{"ns": ns, "key": key, "data": encode(items[key]).decode(), "expires_at": expires, "updated_at": now}
                for key in keys]
        if not rows:
            return

        def work(conn: Connection) -> None:
            for start in range(0, len(rows), _CHUNK):
                self._upsert_records(conn, rows[start:start + _CHUNK])
            self._append_changes(conn, ns, keys, "put")

        await self._write(work, feed=True)

    async def patch(self, ns: str, key: str, fields: JSON) -> JSON | None:
        return (await self.patch_many(ns, {key: fields})).get(key)

    async def patch_many(self, ns: str, items: Mapping[str, JSON]) -> dict[str, JSON]:
        check_ns(ns)
        keys = sorted(check_name(key) for key in items)
        for fields in items.values():
            encode(fields)

        def work(conn: Connection) -> dict[str, JSON]:
            now = now_ms()
            merged: dict[str, JSON] = {}
            for start in range(0, len(keys), _CHUNK):
                rows = conn.execute(_LOCK_RECORDS, {"ns": ns, "keys": keys[start:start + _CHUNK], "now": now})
                for key, raw in rows.all():
                    current = decode(raw, ns, key)
                    if current is not None:
                        merged[key] = merge(current, items[key])
            if merged:
                conn.execute(_SET_RECORD, [{"at_ns": ns, "at_key": key, "new_data": encode(record).decode(),
                                            "new_at": now} for key, record in sorted(merged.items())])
            self._append_changes(conn, ns, sorted(merged), "put")
            return merged

        return await self._write(work, feed=True) if keys else {}

    async def delete(self, ns: str, key: str) -> bool:
        return await self.delete_many(ns, [key]) == 1

    async def delete_many(self, ns: str, keys: Sequence[str]) -> int:
        check_ns(ns)
        wanted = sorted({check_name(k) for k in keys})

        def work(conn: Connection) -> int:
            now = now_ms()
            gone: list[str] = []
            for start in range(0, len(wanted), _CHUNK):
                chunk = records.c.key.in_(wanted[start:start + _CHUNK])
                live = conn.execute(select(records.c.key).where(
                    records.c.ns == ns, chunk, _live(records, now)).with_for_update())
                gone.extend(live.scalars())
                conn.execute(delete(records).where(records.c.ns == ns, chunk))
            self._append_changes(conn, ns, sorted(gone), "delete")
            return len(gone)

        return await self._write(work, feed=True) if wanted else 0

    # counters ----------------------------------------------------------------
    async def incr(
        self, ns: str, key: str, deltas: Mapping[str, int], *, limits: Mapping[str, int] | None = None
    ) -> dict[str, int] | None:
        result = await self._incr(ns, {key: deltas}, limits or {})
        return None if result is None else result[key]

    async def incr_many(self, ns: str, items: Mapping[str, Mapping[str, int]]) -> dict[str, dict[str, int]]:
        return await self._incr(ns, items, {}) or {}

    async def _incr(self, ns: str, items: Mapping[str, Mapping[str, int]],
                    limits: Mapping[str, int]) -> dict[str, dict[str, int]] | None:
        """Every key's deltas in one transaction; None when a limit (of a single key's
        call) refused them."""
        check_ns(ns)
        keys = sorted(check_name(key) for key in items)
        # (key, field) in the order the rows are locked and updated
        pairs = [(key, name) for key in keys
                 for name in sorted(check_name(f, "counter field", MAX_FIELD_LEN) for f in items[key])]

        def work(conn: Connection) -> Any:
            current: dict[str, dict[str, int]] = {key: {} for key in keys}
            for start in range(0, len(keys), _CHUNK):
                for key, name, value in conn.execute(_LOCK_COUNTERS, {"ns": ns, "keys": keys[start:start + _CHUNK]}):
                    current[key][name] = int(value)
            if any(name not in current[key] for key, name in pairs):
                return _MISSING
            for key, name in pairs:
                limit = limits.get(name, -1)
                if limit >= 0 and current[key][name] + items[key][name] > limit:
                    return None
            conn.execute(_ADD_TO_COUNTER, [{"at_ns": ns, "at_key": key, "at_field": name, "delta": items[key][name]}
                                           for key, name in pairs])
            for key, name in pairs:
                current[key][name] += items[key][name]
            return current

        def create(conn: Connection) -> None:
            self._insert_ignore(conn, counters, [{"ns": ns, "key": key, "field": name, "value": 0}
                                                 for key, name in pairs])

        if not keys:
            return {}
        # rows are created in a transaction of their own: creating and locking them in one
        # deadlocks on MySQL when two workers race for a new counter
        result = await self._write(work)
        if result is _MISSING:
            await self._write(create)
            result = await self._write(work)
        return result

    async def counters(self, ns: str, key: str) -> dict[str, int]:
        check_ns(ns)
        params = {"ns": ns, "key": check_name(key)}
        return await self._run_read(lambda conn: {name: int(value)
                                                  for name, value in conn.execute(_READ_COUNTERS, params)})

    async def counters_many(self, ns: str) -> dict[str, dict[str, int]]:
        check_ns(ns)

        def work(conn: Connection) -> dict[str, dict[str, int]]:
            out: dict[str, dict[str, int]] = {}
            rows = conn.execute(select(counters.c.key, counters.c.field, counters.c.value)
                                .where(counters.c.ns == ns))
            for key, name, value in rows:
                out.setdefault(key, {})[name] = int(value)
            return out

        return await self._run_read(work)

    async def drop_counters(self, ns: str) -> None:
        check_ns(ns)

        def work(conn: Connection) -> None:
            conn.execute(delete(counters).where(counters.c.ns == ns))

        await self._write(work)

    async def delete_counters(self, ns: str, keys: Sequence[str]) -> None:
        check_ns(ns)
        wanted = sorted({check_name(k) for k in keys})

        def work(conn: Connection) -> None:
            for start in range(0, len(wanted), _CHUNK):
                conn.execute(delete(counters).where(counters.c.ns == ns,
                                                    counters.c.key.in_(wanted[start:start + _CHUNK])))

        if wanted:
            await self._write(work)

    async def counter_namespaces(self, prefix: str = "") -> builtins.list[str]:
        query = select(counters.c.ns).distinct().order_by(counters.c.ns)
        if prefix:
            query = query.where(counters.c.ns.startswith(prefix, autoescape=True))
        return await self._run_read(lambda conn: list(conn.execute(query).scalars()))

    # locks -------------------------------------------------------------------
    async def acquire_lock(self, name: str, owner: str, ttl: float) -> bool:
        check_name(name, "lock name")
        check_name(owner, "lock owner")

        def work(conn: Connection) -> bool:
            now = now_ms()
            expires = now + int(ttl * 1000)
            row = conn.execute(select(locks.c.owner, locks.c.expires_at)
                               .where(locks.c.name == name).with_for_update()).first()
            if row is None:
                # a racing insert raises IntegrityError (or a deadlock on MySQL): _write runs us again
                conn.execute(insert(locks).values(name=name, owner=owner, expires_at=expires))
                return True
            if row.owner != owner and row.expires_at > now:
                return False
            conn.execute(update(locks).where(locks.c.name == name).values(owner=owner, expires_at=expires))
            return True

        return await self._write(work)

    async def release_lock(self, name: str, owner: str) -> bool:
        check_name(name, "lock name")
        check_name(owner, "lock owner")

        def work(conn: Connection) -> bool:
            return bool(conn.execute(delete(locks).where(locks.c.name == name, locks.c.owner == owner)).rowcount)

        return await self._write(work)

    # log ---------------------------------------------------------------------
    async def append_logs(self, stream: str, entries: Sequence[JSON], *, max_len: int = 10_000) -> None:
        check_ns(stream)
        rows = [{"stream": stream, "at_ms": now_ms(), "data": encode(data).decode()} for data in entries]
        if not rows:
            return

        def work(conn: Connection) -> None:
            conn.execute(insert(logs), rows)
            cut = conn.execute(select(logs.c.seq).where(logs.c.stream == stream)
                               .order_by(logs.c.seq.desc()).offset(max_len).limit(1)).scalar()
            if cut is not None:
                conn.execute(delete(logs).where(logs.c.stream == stream, logs.c.seq <= cut))

        await self._write(work)

    async def log_streams(self) -> builtins.list[str]:
        query = select(logs.c.stream).distinct().order_by(logs.c.stream)
        return await self._run_read(lambda conn: list(conn.execute(query).scalars()))

    async def read_log(
        self, stream: str, *, limit: int = 100, before_seq: int | None = None
    ) -> builtins.list[LogEntry]:
        check_ns(stream)
        query = select(logs.c.seq, logs.c.at_ms, logs.c.data).where(logs.c.stream == stream)
        if before_seq is not None:
            query = query.where(logs.c.seq < before_seq)
        rows = await self._run_read(lambda conn: conn.execute(query.order_by(logs.c.seq.desc()).limit(limit)).all())
        entries = [(int(seq), int(at), decode(raw, f"log {stream}", seq)) for seq, at, raw in rows]
        return [LogEntry(seq, at, data) for seq, at, data in entries if data is not None]

    # change feed -------------------------------------------------------------
    async def last_change(self) -> int:
        return await self._run_read(lambda conn: int(conn.execute(_FEED_END).scalar_one()))

    async def changes_since(self, seq: int, *, limit: int = 1000) -> builtins.list[Change]:
        def work(conn: Connection) -> list[Change]:
            marks = dict(conn.execute(_FEED_MARKS).all())
            reset = feed_reset(seq, int(marks[FEED_TRIMMED]), int(marks[FEED_SEQ]))
            if reset is not None:
                return [reset]
            rows = conn.execute(_CHANGES_AFTER, {"seq": seq, "limit": limit})
            return [Change(int(s), ns, key, op, origin or "") for s, ns, key, op, origin in rows]

        return await self._run_read(work)

    async def compact(self) -> None:
        def work(conn: Connection) -> None:
            conn.execute(delete(changes))
            end = conn.execute(_FEED_END).scalar_one()
            conn.execute(update(meta).where(meta.c.name == FEED_TRIMMED).values(value=end))

        await self._write(work)
        if not self.compact_statements:
            return
        try:
            await self._outside_transaction(self.compact_statements)
        except DBAPIError as exc:  # another connection's lock outlasted the engine's timeout
            logger.warning("storage: {} tables not rewritten ({}): overwritten values stay in free space until "
                           "the database reuses it", self.name, exc.orig)

    async def _outside_transaction(self, statements: Sequence[str]) -> None:
        """Statements on one connection in autocommit mode (VACUUM and its kin refuse a transaction)."""
        engine = self.engine
        if isinstance(engine, ThreadedEngine):
            def run() -> None:
                raw = engine.sync_engine.raw_connection()  # the driver's own connection: no BEGIN
                try:
                    cursor = raw.cursor()
                    for statement in statements:
                        cursor.execute(statement)
                    cursor.close()
                finally:
                    raw.close()

            async with self._gate:
                await engine.call(run)
        else:
            async with engine.connect() as conn:
                autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                for statement in statements:
                    await autocommit.exec_driver_sql(statement)

    async def wait_for_changes(self, seq: int, timeout: float) -> builtins.list[Change]:
        if self._waiter is None:
            raise StorageError(f"{self.name} storage is not open")
        return await self._waiter.wait(lambda: self.changes_since(seq), timeout, self.poll_interval)
