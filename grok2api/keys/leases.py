"""Storage locks an API key's limits lean on, renewed by one task per process.

Two kinds: a request's concurrency slot (``key-slot:<key id>:<n>``) and this process's
heartbeat (``key-worker:<origin>``), which says that the quota reservations written
under this process's :attr:`~grok2api.storage.Storage.origin` are still alive. Each
lock expires :data:`LEASE_TTL` seconds after its last renewal, so a crashed process
leaks neither a slot nor a reservation for longer than that; a live one renews every
lock it holds each :data:`LEASE_TTL` / 3 seconds, however long its requests run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from grok2api.ids import random_hex
from grok2api.logs.logger import logger
from grok2api.storage import Storage

#: seconds a lock outlives its holder's last renewal
LEASE_TTL = 60.0
WORKER_LOCK = "key-worker:{}"
#: seconds a live answer about another process is trusted (a refused key asks at most this often)
ALIVE_CACHE = 5.0


class Leases:
    def __init__(self, storage: Storage, ttl: float = LEASE_TTL) -> None:
        self.storage = storage
        self.ttl = ttl
        self._held: dict[str, str] = {}  # lock name -> owner
        self._alive: dict[str, float] = {}  # other origin -> monotonic time it was seen alive
        self._heartbeat = False
        self._task: asyncio.Task[None] | None = None
        #: run after each renewal round (the reservations' retries of failed writes)
        self.after_round: Callable[[], Awaitable[None]] | None = None

    @property
    def origin(self) -> str:
        return self.storage.origin

    async def take(self, name: str, owner: str) -> bool:
        """The lock ``name`` for ``owner`` if free; renewed from then on until :meth:`drop`."""
        if not await self.storage.acquire_lock(name, owner, self.ttl):
            return False
        self._held[name] = owner
        self._start()
        return True

    async def drop(self, name: str) -> None:
        owner = self._held.pop(name, None)
        if owner is not None:
            await self.storage.release_lock(name, owner)

    async def beat(self) -> None:
        """Hold this process's heartbeat (once; renewed from then on) before a reservation is
        written: without it, other workers would take the reservation for a crashed one's."""
        if self._heartbeat:
            return
        name = WORKER_LOCK.format(self.origin)
        if not await self.storage.acquire_lock(name, self.origin, self.ttl):  # a sweeper's probe, for a moment
            logger.warning("API keys: this process's heartbeat lock is held by another; the next round takes it")
        self._heartbeat = True
        self._held[name] = self.origin
        self._start()

    async def dead(self, origin: str) -> bool:
        """Whether the process ``origin`` stopped renewing its heartbeat (crashed or stopped)."""
        if origin == self.origin:
            return False
        seen = self._alive.get(origin)
        if seen is not None and time.monotonic() - seen < ALIVE_CACHE:
            return False
        name, probe = WORKER_LOCK.format(origin), "probe-" + random_hex(8)
        if await self.storage.acquire_lock(name, probe, self.ttl):
            await self.storage.release_lock(name, probe)
            self._alive.pop(origin, None)
            return True
        self._alive[origin] = time.monotonic()
        return False

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._renew(), name="api-key-leases")

    async def _renew(self) -> None:
        while self._held:
            await asyncio.sleep(self.ttl / 3)
            for name, owner in list(self._held.items()):
                try:
                    if not await self.storage.acquire_lock(name, owner, self.ttl) and name in self._held:
                        logger.warning("API keys: lock {} was taken over after it expired", name.split(":")[0])
                except Exception as exc:  # the next round tries again; the lock lasts ttl
                    logger.warning("API keys: renewing a lock failed: {}", exc)
            if self.after_round is not None:
                try:
                    await self.after_round()
                except Exception as exc:
                    logger.warning("API keys: retrying reservations failed: {}", exc)

    async def close(self) -> None:
        """Stop renewing and release every lock (a stopped process's reservations are then given back)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.after_round is not None:
            with contextlib.suppress(Exception):
                await self.after_round()
        held, self._held = self._held, {}
        for name, owner in held.items():
            with contextlib.suppress(Exception):
                await self.storage.release_lock(name, owner)
        self._heartbeat = False
