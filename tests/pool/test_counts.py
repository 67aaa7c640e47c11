"""Shared counts: ``use_count`` and the failures by class add up across workers, over a base
the record keeps (what the original product counted)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from grok2api.config.settings import Settings
from grok2api.pool import TokenPool
from grok2api.pool.account import NS_COUNTS
from grok2api.storage import NS_ACCOUNTS, Change, Storage
from grok2api.testing.fake_grok import FakeGrok
from grok2api.upstream import Failure, UpstreamError

from .conftest import GROK3, PoolFactory, grok_settings

WORKER = Path(__file__).with_name("worker.py")
RATE_LIMITED = UpstreamError(Failure.RATE_LIMITED, "slow down", status=429)


async def serve(pool: TokenPool, outcome: UpstreamError | None = None) -> None:
    lease = await pool.acquire(GROK3)
    await lease.release(outcome)


async def test_two_processes_never_lose_each_others_increments(pool: TokenPool, fake_grok: FakeGrok,
                                                               storage: Storage) -> None:
    fake_grok.add_account("shared")
    await pool.add([{"token": "shared", "use_count": 40}])  # an imported base
    overrides = {"grok": grok_settings(fake_grok), "token": {"save_delay_ms": 5, "sync_after_use": False}}
    workers = [await asyncio.create_subprocess_exec(sys.executable, str(WORKER), "count",
                                                    orjson.dumps(overrides).decode(), "25",
                                                    stderr=asyncio.subprocess.PIPE) for _ in range(2)]
    results = await asyncio.wait_for(asyncio.gather(*(w.communicate() for w in workers)), 60)
    for worker, (_out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err.decode()[-2000:]
    assert await storage.counters(NS_COUNTS, "shared") == {"use_count": 50}
    assert (await storage.get(NS_ACCOUNTS, "shared"))["use_count"] == 40
    await pool.apply_change(Change(0, NS_ACCOUNTS, "shared", "put"))
    assert pool.get("shared").use_count == 90


async def test_shown_counts_are_base_plus_stored_plus_unsaved(make_pool: PoolFactory, storage: Storage) -> None:
    first = await make_pool()
    await first.add([{"token": "acct-a", "use_count": 7, "failures": {"blocked": 1}}])
    await storage.incr(NS_COUNTS, "acct-a", {"use_count": 3, "fail:rate_limited": 2})  # another worker's
    second = await make_pool()
    await serve(second)
    await serve(second, RATE_LIMITED)
    account = second.get("acct-a")
    assert (account.use_count, account.failures) == (11, {"blocked": 1, "rate_limited": 3})
    await second.apply_change(Change(0, NS_ACCOUNTS, "acct-a", "put"))  # re-read before the write
    assert (account.use_count, account.failures) == (11, {"blocked": 1, "rate_limited": 3})
    assert (await second.stats())["use_count"] == 11
    await second.flush()
    await second.apply_change(Change(0, "", "", "reset"))
    assert (second.get("acct-a").use_count, second.get("acct-a").failures) == (11, {"blocked": 1, "rate_limited": 3})
    assert await storage.counters(NS_COUNTS, "acct-a") == {"use_count": 4, "fail:rate_limited": 3}


async def test_a_failed_write_keeps_the_increments_once(pool: TokenPool, storage: Storage,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    await pool.add(["acct-a"])
    real_incr = storage.incr
    calls: list[Any] = []

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        if len(calls) == 1:
            raise OSError("storage away")
        return await real_incr(*args, **kwargs)

    monkeypatch.setattr(storage, "incr", flaky)
    await serve(pool)
    await pool.flush()  # the first round fails and gives up
    await serve(pool)
    await pool.flush()
    assert await storage.counters(NS_COUNTS, "acct-a") == {"use_count": 2}
    assert pool.get("acct-a").use_count == 2


async def test_removing_an_account_removes_its_counts(pool: TokenPool, storage: Storage, settings: Settings) -> None:
    await pool.add(["acct-a"])
    await serve(pool)
    await pool.flush()
    assert await pool.remove(["acct-a"]) == 1
    assert not any((await storage.counters(NS_COUNTS, "acct-a")).values())
    await pool.add(["acct-a"])
    assert pool.get("acct-a").use_count == 0
