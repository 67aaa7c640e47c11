"""Versioned migrations of what the kernel and its plugins keep in storage, on every engine.

Two versions live in a database. The engine's *schema version* is the shape of its own
tables or keys (``g2a_meta`` in SQL, ``g2a:meta`` in Redis); each engine upgrades it in
:meth:`Storage.open`. The *data version* here is the shape of the records the gateway
writes through the :class:`Storage` contract, the same on every engine: the record
``storage/migrations`` holds it and every step applied, with when and by which worker.

On start the gateway reads that record (one read when nothing is due); when it is behind,
one worker takes the lock :data:`LOCK`, reads it again, and applies each missing step in
order, storing the version after each. Workers starting together wait on the lock and
then find the work done; a worker that dies mid-step leaves the lock to expire, and the
next start runs that step again, so every step is safe to run twice. A database whose
data version is newer than this code knows is refused, never misread.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from grok2api.ids import account_id
from grok2api.logs.logger import logger
from grok2api.storage import JSON, NS_SESSIONS, Storage, StorageError, now_ms

#: the namespace of the storage's own state (data version, credential sealing); never exported
NS_STORAGE = "storage"
MIGRATIONS_KEY = "migrations"
#: the lock one worker holds while it migrates (or seals credentials)
LOCK = "storage-migrations"
#: seconds the lock is held without renewal, and how long another worker waits for it
LOCK_TTL, LOCK_WAIT = 60.0, 600.0


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the data version: ``apply`` brings a database at ``version - 1`` to ``version``."""

    version: int
    name: str
    apply: Callable[[Storage], Awaitable[None]]


async def _base(storage: Storage) -> None:
    """v1: accounts, API keys and their daily usage, config sections, sessions, meta: the
    first release's records, which every later step reads as they are."""


async def _admin(storage: Storage) -> None:
    """v2, the admin plugin's namespaces (``admin_users``, its login throttle counters):
    sessions become an admin user's, with an epoch and an absolute expiry. A session of the
    kernel's first form (``{"username"}`` alone) can never be valid again; it is removed
    instead of lingering until its expiry."""
    sessions = await storage.list(NS_SESSIONS)
    stale = [key for key, record in sessions.items() if "created_at" not in record]
    if stale:
        await storage.delete_many(NS_SESSIONS, stale)


async def _jobs(storage: Storage) -> None:
    """v3, the durable jobs: ``admin_jobs`` and ``admin_job_items`` (the admin's batch
    operations), ``video_jobs``, ``video_queue`` and ``video_inputs`` (OpenAI's video jobs).
    No earlier record has their shape, so nothing is converted: the step marks the data
    version from which a database may hold them."""


#: the request log's hourly counter namespaces (``grok2api.logs.request_log``)
_STATS_PREFIX = "stats:"
#: the longest model id a registry accepts, so the longest key an hourly count is written under
_MODEL_ID_MAX = 128


async def _metrics(storage: Storage) -> None:
    """v4, the metrics plugin and the admin's request statistics read the hourly counts
    ``stats:<hour>``. Before model ids were bounded, a request naming an unknown, very
    long model became a key there; such keys (longer than any model id) are removed."""
    for ns in await storage.counter_namespaces(_STATS_PREFIX):
        long_keys = [key for key in await storage.counters_many(ns) if len(key) > _MODEL_ID_MAX]
        if long_keys:
            await storage.delete_counters(ns, long_keys)


#: the admin plugin's job chunks and failed lists (``<job>:<n>``, ``<job>:failed:<n>``)
_NS_JOB_ITEMS = "admin_job_items"
#: how long a failed list is kept beside its ended job (the admin's ``KEEP_SEC``)
_FAILED_KEEP_SEC = 7 * 24 * 3600


async def _job_ids(storage: Storage) -> None:
    """v5, the admin jobs' chunks and failed lists name their accounts by id, not by token:
    a list ``{"tokens": [...]}`` becomes ``{"ids": [...]}`` (a failed list is kept a week
    again), then the engine forgets the old copies (:meth:`Storage.compact`), so no token
    stays readable in the database, a key or not. Nothing to convert: nothing compacted."""
    items = await storage.list(_NS_JOB_ITEMS)
    old = {key: record for key, record in items.items() if "tokens" in record}
    for key, record in old.items():
        ttl = _FAILED_KEEP_SEC if ":failed:" in key else None
        await storage.put(_NS_JOB_ITEMS, key, {"ids": [account_id(t) for t in record["tokens"]]}, ttl=ttl)
    if old:
        await storage.compact()
        logger.info("storage: {} admin job list(s) now name their accounts by id", len(old))


#: every data step, in order; a new one is appended (never inserted or changed)
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "base", _base),
    Migration(2, "admin", _admin),
    Migration(3, "jobs", _jobs),
    Migration(4, "metrics", _metrics),
    Migration(5, "job_ids", _job_ids),
)
DATA_VERSION = MIGRATIONS[-1].version


def stored_version(state: JSON | None) -> int:
    return int((state or {}).get("version", 0))


@contextlib.asynccontextmanager
async def held(storage: Storage, name: str = LOCK) -> AsyncIterator[None]:
    """Hold a storage lock, renewed while held; waits up to :data:`LOCK_WAIT` for another holder."""
    owner = f"{storage.origin}:{name}"
    waited = 0.0
    while not await storage.acquire_lock(name, owner, LOCK_TTL):
        if waited >= LOCK_WAIT:
            raise StorageError(f"another worker held the storage lock {name!r} for {LOCK_WAIT:.0f} s")
        await asyncio.sleep(0.1)
        waited += 0.1

    async def renew() -> None:
        while True:
            await asyncio.sleep(LOCK_TTL / 3)
            await storage.acquire_lock(name, owner, LOCK_TTL)

    renewer = asyncio.create_task(renew(), name=f"renew-{name}")
    try:
        yield
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        await storage.release_lock(name, owner)


async def migrate(storage: Storage, steps: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the steps the database lacks, in order; returns the versions applied here."""
    latest = steps[-1].version
    found = stored_version(await storage.get(NS_STORAGE, MIGRATIONS_KEY))
    if found > latest:
        raise StorageError(f"the {storage.name} database has data version {found}, newer than this grok2api "
                           f"understands ({latest}); upgrade grok2api")
    if found == latest:
        return []
    applied: list[int] = []
    async with held(storage):
        state = await storage.get(NS_STORAGE, MIGRATIONS_KEY) or {"version": 0, "applied": []}
        for step in steps:
            if step.version <= stored_version(state):
                continue
            await step.apply(storage)
            state = {"version": step.version,
                     "applied": [*state.get("applied", []),
                                 {"version": step.version, "name": step.name, "at_ms": now_ms(), "by": storage.origin}]}
            await storage.put(NS_STORAGE, MIGRATIONS_KEY, state)
            applied.append(step.version)
            logger.info("storage: data version {} ({}) applied", step.version, step.name)
    return applied
