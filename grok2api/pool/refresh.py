"""Quota sync: asking Grok's rate-limits endpoint what each account has left.

Three callers: a successful request (:meth:`Refresher.sync_soon`, for the bucket it
used), the background refresher (accounts whose check is due: never synced, quota
unknown or estimated at 0, a cooldown or heavy reset just ended, or the last sync older
than ``token.refresh_interval_hours``), and an operator (:meth:`Refresher.refresh`).

Every rate-limits call, whoever makes it, shares one limit of
``performance.usage_max_concurrent``. Background and operator refreshes run under the
storage lock ``pool.refresh``, so across processes exactly one worker refreshes at a
time: the holder renews the lock while it works; a worker that finds it taken waits,
then re-reads the accounts from storage and (for a scheduled run) skips those another
worker synced meanwhile. Progress is published to storage (``meta/pool.refresh``) so
every worker's admin console sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from grok2api.config.settings import Settings
from grok2api.logs.logger import logger, mask_secret
from grok2api.pool import machine
from grok2api.pool.account import SELECTABLE_POOLS, UNKNOWN, Account, Bucket, Status, now_ms
from grok2api.pool.claims import QuotaClaims
from grok2api.pool.persistence import read_records
from grok2api.storage import JSON, NS_META, Storage
from grok2api.upstream import GrokClient, UpstreamError

LOCK_NAME = "pool.refresh"
PROGRESS_KEY = "pool.refresh"
LOCK_TTL = 30.0
LOCK_POLL = 0.2
_PUBLISH_EVERY_MS = 1_000
_MAX_ERRORS = 50
#: accounts planned between two turns of the event loop at start-up
PLAN_SLICE = 1_000
#: the rate-limit names a refresh asks about, as the original's scheduler did
REFRESH_MODELS = {Bucket.NORMAL: "grok-4-1-thinking-1129", Bucket.HEAVY: "grok-4-heavy"}

State = Literal["waiting", "running", "finished", "aborted"]


@dataclass
class RefreshProgress:
    """One refresh run, as the admin console shows it."""

    id: str
    reason: Literal["scheduled", "manual"]
    total: int
    worker: str
    done: int = 0
    failed: int = 0
    state: State = "waiting"
    started_at: int = field(default_factory=now_ms)
    finished_at: int | None = None
    errors: dict[str, str] = field(default_factory=dict)  # masked token -> failure, the first few
    _ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def remaining(self) -> int:
        return max(0, self.total - self.done - self.failed)

    async def wait(self) -> RefreshProgress:
        """Until the run has finished or was aborted."""
        await self._ended.wait()
        return self

    def to_dict(self) -> JSON:
        return {"id": self.id, "reason": self.reason, "state": self.state, "total": self.total,
                "done": self.done, "failed": self.failed, "remaining": self.remaining,
                "worker": self.worker, "started_at": self.started_at, "finished_at": self.finished_at,
                "errors": dict(self.errors)}


class Limiter:
    """A semaphore whose size is read from settings each time (sections change at run time)."""

    def __init__(self, size: Callable[[], int]) -> None:
        self._size = size
        self._active = 0
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self._active < self._size())
            self._active += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._changed:
            self._active -= 1
            self._changed.notify_all()


#: the account fields :func:`next_check` reads: a change elsewhere leaves the plan as it is
PLAN_FIELDS = frozenset({"status", "pool", "last_sync_at", "quota", "heavy_quota", "cooldown_until",
                         "heavy_reset_at"})


def next_check(account: Account, settings: Settings) -> int | None:
    """When the refresher should sync this account next (ms), None for never.

    Expired and disabled accounts are not synced (a sync never revives them). A bucket
    with unknown quota, or at 0 without a known reset, is checked
    ``token.cooldown_base_sec`` after the last attempt; an empty bucket with a reset
    time, at that time; everything else ``token.refresh_interval_hours`` after the last
    attempt.
    """
    if not account.usable or account.pool not in SELECTABLE_POOLS:
        return None
    cfg = settings.token
    last = account.last_sync_at or 0
    when = last + int(cfg.refresh_interval_hours * 3_600_000)
    for bucket in account.buckets:
        remaining = account.remaining(bucket)
        if bucket is Bucket.HEAVY:
            reset = account.heavy_reset_at
        else:
            reset = account.cooldown_until if account.status is Status.COOLING else 0
        if remaining == 0 and reset:
            when = min(when, reset)
        elif remaining in (0, UNKNOWN):
            when = min(when, last + int(cfg.cooldown_base_sec * 1000))
    return when


class Refresher:
    """Runs quota syncs for the pool; holds no account state of its own beyond its schedule."""

    def __init__(self, storage: Storage, client: GrokClient, settings: Settings, *,
                 lookup: Callable[[str], Account | None],
                 apply: Callable[[Account, set[str]], None],
                 merge: Callable[[str, JSON | None], None],
                 flush: Callable[[], Awaitable[None]], claims: QuotaClaims) -> None:
        self._storage = storage
        self._claims = claims
        self._client = client
        self._settings = settings
        self._lookup = lookup
        self._apply = apply
        self._merge = merge
        self._flush = flush
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._limiter = Limiter(lambda: settings.performance.usage_max_concurrent)
        self._due: list[tuple[int, int, Account]] = []
        self._seq = itertools.count()
        self._kick = asyncio.Event()
        self._one_run = asyncio.Lock()  # runs of this process, one after another
        self._pending: set[tuple[str, Bucket]] = set()
        self._synced_at: dict[tuple[str, Bucket], float] = {}  # monotonic start of the last sync after use
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopped = False
        self._live = 0  # entries in _due at the last compaction

    # scheduling ----------------------------------------------------------------
    def schedule(self, account: Account) -> None:
        """Note when this account is next due; call after anything about it changed."""
        top = self._due[0] if self._due else None
        if (when := self._replan(account)) is not None:
            heapq.heappush(self._due, (when, next(self._seq), account))
            self._planned(top)

    async def plan(self, accounts: Sequence[Account]) -> None:
        """As :meth:`schedule` of each (a load of the whole pool), in slices between which
        requests are served (100,000 plans take a quarter of a second), then one heap build.
        An account planned again in the meantime, because it changed, has its newer entry:
        the older one is stale."""
        entries: list[tuple[int, int, Account]] = []
        for start in range(0, len(accounts), PLAN_SLICE):
            entries += [(when, next(self._seq), a) for a in accounts[start:start + PLAN_SLICE]
                        if (when := self._replan(a)) is not None]
            await asyncio.sleep(0)
        top = self._due[0] if self._due else None
        self._due += entries
        heapq.heapify(self._due)
        self._planned(top)

    def _replan(self, account: Account) -> int | None:
        """The account's check time when its plan changed and it has one: a new entry is due."""
        when = next_check(account, self._settings)
        if when == account.next_check:
            return None
        account.next_check = when
        return when

    def _planned(self, top: tuple[int, int, Account] | None) -> None:
        """After new entries: wake the loop if the first check moved; drop the plans that changed since."""
        if self._due and self._due[0] is not top:
            self._kick.set()
        if len(self._due) > 2 * self._live + 1024:
            self._due = [e for e in self._due if e[0] == e[2].next_check and self._lookup(e[2].token) is e[2]]
            heapq.heapify(self._due)
            self._live = len(self._due)

    def _pop_due(self, now: int) -> list[Account]:
        found: dict[str, Account] = {}
        while self._due and self._due[0][0] <= now:
            when, _seq, account = heapq.heappop(self._due)
            if when == account.next_check and self._lookup(account.token) is account:
                account.next_check = None  # the next schedule() plans it afresh
                found[account.token] = account
        return list(found.values())

    def start(self, accounts: Sequence[Account] = ()) -> None:
        """Run the schedule, after a first plan of ``accounts`` (a start's whole pool)."""
        self._loop_task = asyncio.create_task(self._loop(accounts), name="pool-refresher")

    async def stop(self) -> None:
        self._stopped = True
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loop_task = None

    async def _loop(self, accounts: Sequence[Account]) -> None:
        await self.plan(accounts)
        while True:
            self._kick.clear()
            delay = 60.0 if not self._due else (self._due[0][0] - now_ms()) / 1000
            if delay > 0:
                with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can swallow a cancel
                    async with asyncio.timeout(min(delay, 60.0)):
                        await self._kick.wait()
                continue
            if not self._settings.token.auto_refresh:
                await asyncio.sleep(1)  # keep the schedule; it may be switched on again
                continue
            due = self._pop_due(now_ms())
            if due:
                try:
                    await self._run(due)
                except Exception:
                    logger.exception("pool: scheduled refresh failed")

    # runs ----------------------------------------------------------------------
    def refresh(self, accounts: Sequence[Account]) -> RefreshProgress:
        """An operator's refresh of these accounts, due or not; runs in the background."""
        progress = RefreshProgress(uuid.uuid4().hex[:12], "manual", len(accounts), self.worker)
        self._spawn(self._run(accounts, progress))
        return progress

    async def _run(self, accounts: Sequence[Account], progress: RefreshProgress | None = None) -> None:
        """One run under the lock; without ``progress``, a scheduled run of the accounts due."""
        async with self._one_run:
            while not await self._storage.acquire_lock(LOCK_NAME, self.worker, LOCK_TTL):
                await asyncio.sleep(LOCK_POLL)  # another worker is refreshing
            keeper = asyncio.create_task(self._keep_lock())
            try:
                todo = await self._reread(accounts, skip_fresh=progress is None)
                if progress is None:
                    if not todo:
                        return
                    progress = RefreshProgress(uuid.uuid4().hex[:12], "scheduled", len(todo), self.worker)
                progress.total = len(todo)
                await self._work(todo, progress, keeper)
            finally:
                keeper.cancel()
                for account in accounts:  # plan again those this run skipped or did not reach
                    self.schedule(account)
                with contextlib.suppress(Exception):
                    await self._flush()  # the next holder must read what this run learnt
                    await self._storage.release_lock(LOCK_NAME, self.worker)
                if progress is not None:
                    if progress.state != "finished":
                        progress.state = "aborted"
                    progress.finished_at = now_ms()
                    await self._publish(progress)
                    progress._ended.set()

    async def _keep_lock(self) -> None:
        """Renew the lock while the run lasts; ends (and so ends the run) if it was lost."""
        while True:
            await asyncio.sleep(LOCK_TTL / 3)
            try:
                kept = await self._storage.acquire_lock(LOCK_NAME, self.worker, LOCK_TTL)
            except Exception as exc:
                kept = False
                logger.warning("pool: renewing the refresh lock failed: {}", exc)
            if not kept:
                logger.error("pool: lost the refresh lock; stopping this refresh")
                return

    async def _reread(self, accounts: Sequence[Account], *, skip_fresh: bool) -> list[Account]:
        """Take the stored state first; a scheduled run drops accounts no longer due."""
        tokens = [a.token for a in accounts]
        records = await read_records(self._storage, tokens)
        for token in tokens:
            self._merge(token, records.get(token))
        now = now_ms()
        fresh = []
        for token in tokens:
            account = self._lookup(token)
            if account is None:
                continue
            if skip_fresh and (when := next_check(account, self._settings)) is not None and when > now:
                continue  # another worker synced it meanwhile
            fresh.append(account)
        return fresh

    async def _work(self, accounts: list[Account], progress: RefreshProgress, keeper: asyncio.Task[None]) -> None:
        progress.state = "running"
        await self._publish(progress)
        queue = iter(accounts)
        published = now_ms()

        async def worker() -> None:
            nonlocal published
            for account in queue:
                if keeper.done():  # the lock is gone: another worker may be refreshing now
                    return
                errors = [e for bucket in account.buckets if (e := await self.sync(account, bucket)) is not None]
                if errors:
                    progress.failed += 1
                    if len(progress.errors) < _MAX_ERRORS:
                        progress.errors[mask_secret(account.token)] = errors[0].failure.value
                else:
                    progress.done += 1
                if now_ms() - published >= _PUBLISH_EVERY_MS:
                    published = now_ms()
                    await self._publish(progress)

        workers = max(1, min(len(accounts), self._settings.performance.usage_max_concurrent))
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(worker())
        if not keeper.done():
            progress.state = "finished"

    async def _publish(self, progress: RefreshProgress) -> None:
        try:
            await self._storage.put(NS_META, PROGRESS_KEY, progress.to_dict())
        except Exception as exc:
            logger.warning("pool: could not publish refresh progress: {}", exc)

    # one sync --------------------------------------------------------------------
    def sync_soon(self, account: Account, bucket: Bucket, model_name: str) -> None:
        """After a success: sync the bucket it used, unless a sync of it is on its way or began
        less than ``token.sync_min_interval_sec`` ago (the local estimate carries meanwhile)."""
        key, now = (account.token, bucket), time.monotonic()
        if key in self._pending or self._stopped:
            return
        if now - self._synced_at.get(key, -math.inf) < self._settings.token.sync_min_interval_sec:
            return
        self._synced_at[key] = now
        self._pending.add(key)
        task = self._spawn(self.sync(account, bucket, model_name))
        task.add_done_callback(lambda _t: self._pending.discard(key))

    async def sync(self, account: Account, bucket: Bucket, model_name: str | None = None) -> UpstreamError | None:
        """One rate-limits call for one bucket, its answer applied through the state machine."""
        async with self._limiter:
            try:
                limits = await self._client.rate_limits(account.token, model_name or REFRESH_MODELS[bucket])
            except UpstreamError as error:
                now = now_ms()
                changed = machine.on_failure(account, bucket, error, now, self._settings.token)
                account.last_sync_at = now
                self._apply(account, changed | {"last_sync_at"})
                return error
        changed = machine.on_quota(account, bucket, limits.remaining, limits.wait_seconds, now_ms(),
                                   self._settings.token)
        self._apply(account, changed)
        if limits.remaining is not None and limits.remaining > 0:  # a new epoch of claims on it
            self._apply(account, await self._claims.start(account, bucket, limits.remaining))
        return None

    def _spawn(self, work: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.opt(exception=error).error("pool: quota sync failed")
