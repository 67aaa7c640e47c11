"""Picking an account without scanning the pool.

Each (pool, bucket) pair has two heaps: ``ready`` holds the accounts that may serve
now, ordered by preference; ``waiting`` holds those that will again at a known time
(cooldown or quota reset), earliest first. Every change to an account goes through
:meth:`Selector.put`, which gives it a new stamp and pushes fresh entries; entries
with an older stamp are stale and dropped when they surface. So an acquisition costs
a few heap operations, whatever the pool's size.

Preference in ``ready``: known remaining quota before unknown, then fewest requests
in flight, then least recently used, then random.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field

from grok2api.config.settings import Settings
from grok2api.plugin.registries import ModelSpec
from grok2api.pool.account import POOL_BASIC, POOL_SUPER, Account, Bucket, Status
from grok2api.pool.errors import NoAccountAvailable

# ready entry: (quota rank, in flight, last used, random, stamp, account); the stamp is
# unique, so tuples never compare accounts
_Ready = tuple[int, int, int, float, int, Account]
# waiting entry: (until ms, stamp, account)
_Waiting = tuple[int, int, Account]
_BUCKETS = tuple(Bucket)


@dataclass(slots=True)
class _Group:
    pool: str
    bucket: Bucket
    ready: list[_Ready] = field(default_factory=list)
    waiting: list[_Waiting] = field(default_factory=list)


def pools_for(model: ModelSpec) -> tuple[str, ...]:
    """Super-tier models only on super accounts; others on basic first, then super."""
    return (POOL_SUPER,) if model.tier == "super" else (POOL_BASIC, POOL_SUPER)


def _waits_until(account: Account, bucket: Bucket, now: int) -> int | None:
    """When an account that cannot serve ``bucket`` now may again, if that is a matter of time."""
    if not account.usable:
        return None
    ends = []
    if account.status is Status.COOLING or account.cooldown_until > now:
        ends.append(account.cooldown_until)
    if bucket is Bucket.HEAVY and account.heavy_quota == 0 and account.heavy_reset_at:
        ends.append(account.heavy_reset_at)
    return max(ends) if ends else None


class Selector:
    """The pool's accounts by token, indexed for selection."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.accounts: dict[str, Account] = {}
        self._groups: dict[tuple[str, Bucket], _Group] = {}
        self._stamps = itertools.count(1)
        self._size: Counter[str] = Counter()
        self._unusable: Counter[str] = Counter()
        #: grows on every put and remove: what was computed over the accounts is current while it stays
        self.changes = 0

    def __len__(self) -> int:
        return len(self.accounts)

    def get(self, token: str) -> Account | None:
        return self.accounts.get(token)

    # maintenance -------------------------------------------------------------
    def put(self, account: Account, now: int) -> None:
        """Add an account, or re-index it after any change."""
        self._enter(account)
        for bucket in _BUCKETS:
            group = self._groups.get((account.pool, bucket))
            if group is not None:
                self._offer(group, account, now)

    def put_many(self, accounts: Iterable[Account], now: int) -> None:
        """As :meth:`put` of each (a load of the whole pool): a pair already indexed is indexed
        again once, from scratch, instead of growing by one entry per account."""
        for account in accounts:
            self._enter(account)
        for group in self._groups.values():
            self._index(group, now)

    def _enter(self, account: Account) -> None:
        """Hold the account, counted under its pool and usability, with a new stamp."""
        self.accounts[account.token] = account
        self.changes += 1
        key = (account.pool, not account.usable)
        if account.indexed != key:
            self._count(account.indexed, -1)
            self._count(key, 1)
            account.indexed = key
        account.stamp = next(self._stamps)

    def remove(self, token: str) -> Account | None:
        account = self.accounts.pop(token, None)
        if account is not None:
            self.changes += 1
            self._count(account.indexed, -1)
            account.indexed = None
            account.stamp = 0  # every entry of it is now stale
        return account

    def _count(self, key: tuple[str, bool] | None, delta: int) -> None:
        if key is not None:
            self._size[key[0]] += delta
            self._unusable[key[0]] += delta * key[1]

    def _selectable(self, account: Account, bucket: Bucket, now: int) -> bool:
        return (account.status is Status.ACTIVE and account.cooldown_until <= now
                and account.remaining(bucket) != 0
                and account.inflight < self._settings.token.max_inflight_per_account)

    def _offer(self, group: _Group, account: Account, now: int) -> None:
        if self._selectable(account, group.bucket, now):
            rank = 0 if account.remaining(group.bucket) > 0 else 1
            entry = (rank, account.inflight, account.last_used_at or 0, random.random(), account.stamp, account)
            heapq.heappush(group.ready, entry)
        elif (until := _waits_until(account, group.bucket, now)) is not None:
            heapq.heappush(group.waiting, (until, account.stamp, account))
        else:
            return
        if len(group.ready) + len(group.waiting) > 3 * self._size[group.pool] + 64:
            group.ready = [e for e in group.ready if e[4] == e[5].stamp]
            group.waiting = [e for e in group.waiting if e[1] == e[2].stamp]
            heapq.heapify(group.ready)
            heapq.heapify(group.waiting)

    def _group(self, pool: str, bucket: Bucket, now: int) -> _Group:
        group = self._groups.get((pool, bucket))
        if group is None:  # first request for this pair: index its accounts once
            group = self._groups[(pool, bucket)] = _Group(pool, bucket)
            self._index(group, now)
        return group

    def _index(self, group: _Group, now: int) -> None:
        """Build the group's heaps afresh from every account of its pool."""
        group.ready, group.waiting = [], []
        for account in self.accounts.values():
            if account.pool == group.pool:
                self._offer(group, account, now)

    def _groups_for(self, model: ModelSpec, now: int) -> Iterator[_Group]:
        bucket = Bucket.of(model)
        for pool in pools_for(model):
            yield self._group(pool, bucket, now)

    # selection ---------------------------------------------------------------
    def due(self, model: ModelSpec, now: int) -> list[Account]:
        """Accounts for this model whose wait has ended; the caller wakes and re-puts them."""
        found = []
        for group in self._groups_for(model, now):
            waiting = group.waiting
            while waiting and waiting[0][0] <= now:
                _until, stamp, account = heapq.heappop(waiting)
                if stamp == account.stamp:
                    found.append(account)
        return found

    def pick(self, model: ModelSpec, now: int, exclude: Collection[str] = ()) -> Account | None:
        """The preferred account for ``model``, or None. The caller claims it and re-puts it."""
        for group in self._groups_for(model, now):
            ready, skipped = group.ready, []
            try:
                while ready:
                    entry = ready[0]
                    account = entry[5]
                    if entry[4] != account.stamp or not self._selectable(account, group.bucket, now):
                        heapq.heappop(ready)  # stale, or made unselectable by a settings change
                    elif account.token in exclude:
                        skipped.append(heapq.heappop(ready))
                    else:
                        return account
            finally:
                for entry in skipped:
                    heapq.heappush(ready, entry)
        return None

    def unavailable(self, model: ModelSpec, now: int, exclude: Collection[str] = ()) -> NoAccountAvailable:
        """Why :meth:`pick` found nothing."""
        pools = pools_for(model)
        where = " or ".join(pools)
        size = sum(self._size[p] for p in pools)
        if size == 0:
            return NoAccountAvailable(f"No account can serve {model.id}: none is configured in pool {where}",
                                      retry_after=None)
        if sum(self._unusable[p] for p in pools) == size:
            return NoAccountAvailable(f"No account can serve {model.id}: all {size} accounts in pool {where} "
                                      "are expired or disabled", retry_after=None)
        earliest = min((until for group in self._groups_for(model, now)
                        if (until := self._earliest_wait(group)) is not None), default=None)
        if earliest is not None:
            seconds = max(1, math.ceil((earliest - now) / 1000))
            return NoAccountAvailable(f"All accounts that can serve {model.id} are cooling down; "
                                      f"the first is available again in {seconds} s", retry_after=seconds)
        reason = "were already tried for this request" if exclude else "are busy or out of quota"
        return NoAccountAvailable(f"All accounts that can serve {model.id} {reason}; try again shortly",
                                  retry_after=1)

    @staticmethod
    def _earliest_wait(group: _Group) -> int | None:
        waiting = group.waiting
        while waiting and waiting[0][1] != waiting[0][2].stamp:
            heapq.heappop(waiting)
        return waiting[0][0] if waiting else None

