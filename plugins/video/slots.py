"""At most ``video.max_concurrent`` videos in the making across every worker.

Each slot is a storage lock (``video-slot:<n>``) whose holder renews it while the video
is made; a crashed holder's lock expires after ``video.job_lease_sec``, so a dead
worker never keeps a slot. Every engine offers these locks, so workers sharing Redis or
PostgreSQL share the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
from collections.abc import AsyncIterator, Callable

from grok2api.api import Storage, logger, random_hex

SLOT_LOCK = "video-slot:{}"


class Slots:
    def __init__(self, storage: Storage, limit: Callable[[], int], lease: Callable[[], float]) -> None:
        self._storage = storage
        self._limit = limit
        self._lease = lease
        self._mine: set[int] = set()  # slots this process holds: never asked for

    async def try_take(self) -> Held | None:
        """A free slot, or None when all are held (tried from a random one, so workers
        do not all queue on slot 0; those this process holds are skipped unasked)."""
        count = self._limit()
        owner = random_hex(8)
        start = random.randrange(count)
        for step in range(count):
            index = (start + step) % count
            if index in self._mine:
                continue
            self._mine.add(index)
            name = SLOT_LOCK.format(index)
            if await self._storage.acquire_lock(name, owner, self._lease()):
                return Held(self._storage, [name], owner, self._lease, functools.partial(self._mine.discard, index))
            self._mine.discard(index)
        return None

    @contextlib.asynccontextmanager
    async def hold(self, poll: float) -> AsyncIterator[Held]:
        """Wait for a slot (polling every ``poll`` seconds), hold it for the block."""
        held = await self.try_take()
        while held is None:
            await asyncio.sleep(poll)
            held = await self.try_take()
        try:
            yield held
        finally:
            await held.release()


class Held:
    """Locks held together (a slot, and a job's claim) and renewed until released."""

    def __init__(self, storage: Storage, names: list[str], owner: str, lease: Callable[[], float],
                 released: Callable[[], None]) -> None:
        self._storage = storage
        self.names = names
        self.owner = owner
        self._lease = lease
        self._released = released
        self._renewer = asyncio.create_task(self._renew())

    async def add(self, name: str) -> bool:
        """Take one more lock under the same owner (False: someone else holds it)."""
        if not await self._storage.acquire_lock(name, self.owner, self._lease()):
            return False
        self.names.append(name)
        return True

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._lease() / 3)
            for name in list(self.names):
                try:
                    if not await self._storage.acquire_lock(name, self.owner, self._lease()):
                        logger.warning("video: lost the lock {} (storage too slow to renew it)", name)
                except Exception as exc:  # the next round tries again; the lease outlasts a hiccup
                    logger.warning("video: renewing {} failed: {}", name, exc)

    async def release(self) -> None:
        self._renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._renewer
        for name in self.names:
            with contextlib.suppress(Exception):  # expiry frees it anyway
                await self._storage.release_lock(name, self.owner)
        self._released()
