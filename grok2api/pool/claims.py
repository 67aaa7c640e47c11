"""The last units of a known quota across workers: claimed in blocks through one atomic counter.

Within a process :meth:`TokenPool.acquire` charges the local estimate without awaiting,
but every worker has its own estimate. So when a sync learns a bucket's quota it starts
an *epoch* of that bucket in the counter namespace :data:`NS_CLAIMS` (key = token,
fields ``<bucket>.epoch``, ``<bucket>.quota``, ``<bucket>.used``: one key per account,
overwritten by each epoch, so nothing piles up), and stores ``[epoch, quota]`` in the
account record for the other workers. Before an upstream call a worker takes the units
from a block it claimed earlier; only when the block is used up does it claim the next
one (smaller as the quota runs low, down to what the request needs) with one ``incr``
whose limits refuse both a claim past the quota and a claim on an epoch that a newer
sync replaced. The counter is the truth: a refused worker reads it once to learn a
newer epoch before it concludes that the bucket is empty for it.
"""

from __future__ import annotations

import asyncio

from grok2api.pool.account import UNKNOWN, Account, Bucket
from grok2api.storage import Storage

#: counter namespace of the quota claims, keyed by token
NS_CLAIMS = "quota_claims"
#: the largest block a worker claims at once: a claim is a storage transaction (about 2 ms
#: of CPU on SQLite), so a busy account with a large quota claims once per 256 requests;
#: below 1,024 units left, :data:`BLOCK_SHARE` makes blocks smaller than this anyway
MAX_BLOCK = 256
#: a block is this fraction of what the worker believes is left (so blocks shrink to 1)
BLOCK_SHARE = 4
#: attempts to start an epoch while other workers start theirs at the same time
START_ATTEMPTS = 5


def _fields(bucket: Bucket) -> tuple[str, str, str]:
    return f"{bucket.value}.epoch", f"{bucket.value}.quota", f"{bucket.value}.used"


class QuotaClaims:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        #: (token, bucket) -> [epoch, units claimed and not yet used]
        self._blocks: dict[tuple[str, Bucket], list[int]] = {}
        self._locks: dict[tuple[str, Bucket], asyncio.Lock] = {}

    async def start(self, account: Account, bucket: Bucket, quota: int) -> set[str]:
        """A sync said ``quota`` units are left: open a new epoch with nothing claimed.

        Returns the record field that now holds ``[epoch, quota]`` (empty when other
        workers kept starting epochs: theirs then stands)."""
        epoch_f, quota_f, used_f = _fields(bucket)
        for _ in range(START_ATTEMPTS):
            current = await self._storage.counters(NS_CLAIMS, account.token)
            epoch = current.get(epoch_f, 0) + 1
            deltas = {epoch_f: 1, quota_f: quota - current.get(quota_f, 0), used_f: -current.get(used_f, 0)}
            # the limit on the epoch makes this a compare-and-set: a concurrent start refuses it
            if await self._storage.incr(NS_CLAIMS, account.token, deltas, limits={epoch_f: epoch}) is not None:
                return {account.set_epoch(bucket, [epoch, quota])}
        return set()

    async def claim(self, account: Account, bucket: Bucket, units: int) -> bool:
        """Take ``units`` of the bucket's current epoch for one request; False: none left for us.

        Accounts whose quota is unknown, or not known from a sync, need no claim."""
        known = account.epoch(bucket)
        if units <= 0 or known is None or account.remaining(bucket) == UNKNOWN:
            return True
        key = (account.token, bucket)
        if self._take_local(key, known[0], units):
            return True
        # one claim in flight per account and bucket: concurrent requests wait for its block
        # instead of each sending a claim of its own
        async with self._locks.setdefault(key, asyncio.Lock()):
            known = account.epoch(bucket) or known  # the claim we waited for may have moved it on
            if self._take_local(key, known[0], units):
                return True
            return await self._claim_block(account, bucket, known, units)

    def _take_local(self, key: tuple[str, Bucket], epoch: int, units: int) -> bool:
        block = self._blocks.get(key)
        if block is None or block[0] != epoch or block[1] < units:
            return False
        block[1] -= units
        return True

    async def _claim_block(self, account: Account, bucket: Bucket, known: list[int], units: int) -> bool:
        key = (account.token, bucket)
        block = self._blocks.get(key)
        left = block[1] if block is not None and block[0] == known[0] else 0
        need = units - left
        size = max(need, min(MAX_BLOCK, account.remaining(bucket) // BLOCK_SHARE))
        for attempt in dict.fromkeys((size, need)):
            if await self._take(account, bucket, known, attempt):
                self._blocks[key] = [known[0], left + attempt - units]
                return True
        newer = await self._newer_epoch(account, bucket, known[0])
        if newer is not None:  # our record was behind: claim from the epoch that counts
            account.set_epoch(bucket, newer)
            return await self._claim_block(account, bucket, newer, units)
        self._blocks.pop(key, None)
        return False

    def forget(self, token: str) -> None:
        for bucket in Bucket:
            self._blocks.pop((token, bucket), None)
            self._locks.pop((token, bucket), None)

    async def _take(self, account: Account, bucket: Bucket, known: list[int], units: int) -> bool:
        epoch_f, _quota_f, used_f = _fields(bucket)
        epoch, quota = known
        limits = {epoch_f: epoch, used_f: quota}
        return await self._storage.incr(NS_CLAIMS, account.token, {epoch_f: 0, used_f: units},
                                        limits=limits) is not None

    async def _newer_epoch(self, account: Account, bucket: Bucket, epoch: int) -> list[int] | None:
        epoch_f, quota_f, _used_f = _fields(bucket)
        current = await self._storage.counters(NS_CLAIMS, account.token)
        if current.get(epoch_f, 0) > epoch:
            return [current[epoch_f], current.get(quota_f, 0)]
        return None
