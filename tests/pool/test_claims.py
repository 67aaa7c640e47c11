"""Claims on a known quota: across workers, never more units than a sync said were left."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson

from grok2api.pool import Lease, TokenPool
from grok2api.pool.account import Bucket
from grok2api.pool.claims import NS_CLAIMS
from grok2api.pool.errors import NoAccountAvailable
from grok2api.storage import NS_ACCOUNTS, Change, Storage
from grok2api.testing.fake_grok import FakeGrok

from .conftest import GROK3, PoolFactory, grok_settings

WORKER = Path(__file__).with_name("worker.py")
REFRESH_MODEL = "grok-4-1-thinking-1129"


async def served(pool: TokenPool) -> bool:
    """One request through the pool's public path; False when no account would take it."""

    async def nothing(_lease: Lease) -> None:
        return None

    try:
        await pool.call(GROK3, nothing)
    except NoAccountAvailable:
        return False
    return True


async def synced(pool: TokenPool, fake_grok: FakeGrok, token: str, quota: int) -> None:
    """The account's quota known from a sync; then the fake Grok stops enforcing it, so only
    the pool's own accounting stands between the workers and a second helping."""
    fake_grok.add_account(token, limits={REFRESH_MODEL: quota})
    await pool.add([token])
    await (await pool.refresh([token])).wait()
    fake_grok.add_account(token, limits={REFRESH_MODEL: 1000, "grok-3": 1000})
    await pool.flush()


async def test_two_processes_racing_get_exactly_the_quota(pool: TokenPool, fake_grok: FakeGrok,
                                                          storage: Storage) -> None:
    await synced(pool, fake_grok, "shared", 9)
    assert pool.get("shared").quota_epoch == [1, 9]
    overrides = {"grok": grok_settings(fake_grok),
                 "token": {"save_delay_ms": 5, "sync_after_use": False, "auto_refresh": False}}
    workers = [await asyncio.create_subprocess_exec(sys.executable, str(WORKER), "race",
                                                    orjson.dumps(overrides).decode(), "3",
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE) for _ in range(2)]
    results = await asyncio.wait_for(asyncio.gather(*(w.communicate() for w in workers)), 60)
    for worker, (_out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err.decode()[-2000:]
    served = [int(out) for out, _err in results]
    assert sum(served) == 9, served
    assert (await storage.counters(NS_CLAIMS, "shared"))["normal.used"] == 9


async def test_a_new_sync_opens_a_new_epoch_on_the_same_key(make_pool: PoolFactory, fake_grok: FakeGrok,
                                                            storage: Storage) -> None:
    first = await make_pool()
    await synced(first, fake_grok, "acct-a", 3)
    second = await make_pool()
    for _ in range(3):
        assert await served(first)
    assert not await served(second)  # all three went to the first
    assert second.get("acct-a").quota == 0  # empty for this worker only: nothing stored
    assert (await storage.get(NS_ACCOUNTS, "acct-a"))["quota"] != 0
    fake_grok.add_account("acct-a", limits={REFRESH_MODEL: 2})
    await (await first.refresh(["acct-a"])).wait()
    await first.flush()
    await second.apply_change(Change(0, NS_ACCOUNTS, "acct-a", "put"))
    assert second.get("acct-a").quota_epoch == [2, 2]
    assert await served(second)
    assert await storage.counters(NS_CLAIMS, "acct-a") == {"normal.epoch": 2, "normal.quota": 2, "normal.used": 1}


async def test_a_worker_behind_learns_the_newer_epoch_from_the_counter(make_pool: PoolFactory,
                                                                        fake_grok: FakeGrok) -> None:
    first = await make_pool()
    await synced(first, fake_grok, "acct-a", 2)
    second = await make_pool()
    fake_grok.add_account("acct-a", limits={REFRESH_MODEL: 5})
    await (await first.refresh(["acct-a"])).wait()  # second has not seen the change
    assert second.get("acct-a").quota_epoch == [1, 2]
    assert await served(second)
    assert second.get("acct-a").quota_epoch == [2, 5]


async def test_unknown_or_operator_set_quotas_need_no_claim(pool: TokenPool, storage: Storage) -> None:
    await pool.add(["acct-a"])
    assert await served(pool)
    await pool.update("acct-a", quota=1)
    assert pool.get("acct-a").epoch(Bucket.NORMAL) is None
    assert await served(pool)
    assert await storage.counters(NS_CLAIMS, "acct-a") == {}
