"""The pool in storage: chunked reads, and writes of changed fields of changed accounts, debounced.

Requests change accounts many times a second; the writer collects the names of the
changed fields per account and writes them ``token.save_delay_ms`` later, so a busy
account costs one write per delay, and a write names only the fields this worker
changed: other fields of the same account are left as other workers and operators
wrote them. A round writes its accounts together, a ``patch_many`` and an ``incr_many``
per chunk, not two transactions per account. Rounds start a delay apart, counted from
the start of the previous one, so a crash (SIGKILL) loses at most the changes of the
last delay and of the round being written. :meth:`AccountWriter.flush` writes
everything still pending (the pool calls it on shutdown). Global event counts
(anti-bot, rotations, …) go the same way, as atomic counter increments, and so do each
account's shared counts (``use_count``, failures by class), in :data:`NS_COUNTS`; a
round that fails keeps them for the next, so nothing is counted twice or lost.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from grok2api.config.settings import Settings
from grok2api.logs.logger import logger
from grok2api.pool.account import NS_COUNTS, Account
from grok2api.storage import JSON, NS_ACCOUNTS, NS_META, Storage

#: counters of pool events shared by every worker: ``counters(NS_META, EVENTS_KEY)``
EVENTS_KEY = "pool.events"
#: records per storage call when many are read, written or deleted at once
CHUNK = 500

T = TypeVar("T")


def chunked(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start:start + CHUNK]


async def read_records(storage: Storage, tokens: Sequence[str]) -> dict[str, JSON]:
    """The stored records of these accounts (missing ones absent)."""
    found: dict[str, JSON] = {}
    for chunk in chunked(tokens):
        found |= await storage.get_many(NS_ACCOUNTS, chunk)
    return found


class AccountWriter:
    def __init__(self, storage: Storage, settings: Settings, lookup: Callable[[str], Account | None]) -> None:
        self._storage = storage
        self._settings = settings
        self._lookup = lookup
        self._dirty: dict[str, set[str]] = {}
        self._writing: dict[str, set[str]] = {}
        self._events: Counter[str] = Counter()
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[bool] | None = None

    def mark(self, token: str, names: Iterable[str]) -> None:
        self._dirty.setdefault(token, set()).update(names)
        self._schedule()

    def count(self, event: str) -> None:
        self._events[event] += 1
        self._schedule()

    def pending(self, token: str) -> set[str]:
        """Fields of this account changed here and not yet stored: a re-read must not undo them."""
        return self._dirty.get(token, set()) | self._writing.get(token, set())

    def unmark(self, token: str, names: Iterable[str]) -> None:
        """Drop fields from the next write: a value meant for this process only."""
        dirty = self._dirty.get(token)
        if dirty is not None:
            dirty.difference_update(names)
            if not dirty:
                del self._dirty[token]

    def forget(self, token: str) -> None:
        self._dirty.pop(token, None)

    @property
    def unsaved(self) -> int:
        return len(self._dirty) + len(self._writing)

    async def insert(self, accounts: list[Account]) -> None:
        """Store new accounts whole, a transaction per chunk."""
        for chunk in chunked(accounts):
            await self._storage.put_many(NS_ACCOUNTS, {a.token: a.to_record() for a in chunk})

    async def flush(self) -> None:
        """Write everything pending now; gives up (logged, nothing scheduled) after a round that failed."""
        while self._dirty or self._events or self._task is not None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._task is None:
                self._task = asyncio.create_task(self._write())
            round_ = self._task
            try:
                # shielded: a flusher that is cancelled (the refresher stopping) leaves the
                # round, which other flushers may be waiting on, to finish
                written = await asyncio.shield(round_)
            except asyncio.CancelledError:
                if not round_.cancelled():
                    raise
                if self._task is round_:  # the round itself was cancelled, perhaps before it ran
                    self._task = None
                continue
            if not written:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                logger.error("pool: {} account(s) could not be saved", len(self._dirty))
                return

    async def _store_counts(self, accounts: Sequence[Account]) -> None:
        unsaved = {account.token: counts for account in accounts if (counts := account.take_unsaved())}
        if not unsaved:
            return
        try:
            stored = await self._storage.incr_many(NS_COUNTS, unsaved)
        except BaseException:
            for account in accounts:
                if account.token in unsaved:
                    account.restore_unsaved(unsaved[account.token])
            raise
        for account in accounts:
            if account.token in stored:
                account.set_stored_counts(stored[account.token])

    def _schedule(self, last_round: float | None = None) -> None:
        """The next round one delay after the change, or after the start of ``last_round``."""
        if self._timer is None and self._task is None:
            loop = asyncio.get_running_loop()
            delay = self._settings.token.save_delay_ms / 1000
            if last_round is not None:
                delay = max(0.0, last_round + delay - loop.time())
            self._timer = loop.call_later(delay, self._start)

    def _start(self) -> None:
        self._timer = None
        self._task = asyncio.create_task(self._write())

    async def _write(self) -> bool:
        """One round: every dirty account, then the event counts. False if storage failed."""
        started = asyncio.get_running_loop().time()
        batch, self._dirty = self._dirty, {}
        self._writing = batch
        events, self._events = self._events, Counter()
        try:
            # an account not found was deleted by another worker; its change removes it here
            accounts = [a for token in batch if (a := self._lookup(token)) is not None]
            for chunk in chunked(accounts):
                records = {a.token: a.to_record(batch[a.token]) for a in chunk if batch[a.token]}
                if records:
                    await self._storage.patch_many(NS_ACCOUNTS, records)
                for account in chunk:
                    batch[account.token] = set()
                await self._store_counts(chunk)
                for account in chunk:
                    del batch[account.token]
            batch.clear()
            if events:
                await self._storage.incr(NS_META, EVENTS_KEY, dict(events))
                events.clear()
            return True
        except Exception as exc:
            logger.warning("pool: saving accounts failed ({}); retrying later", exc)
            return False
        finally:  # whatever was not written stays pending
            for token, names in batch.items():
                self._dirty.setdefault(token, set()).update(names)
            self._events.update(events)
            self._writing = {}
            self._task = None
            if self._dirty or self._events:
                self._schedule(started)
