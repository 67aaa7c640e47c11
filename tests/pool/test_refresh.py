"""Quota sync: after a success, by an operator, in the background, and under the cross-process lock."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from grok2api.config.settings import Settings
from grok2api.pool import UNKNOWN, Status, TokenPool
from grok2api.pool.account import now_ms
from grok2api.pool.refresh import PLAN_SLICE
from grok2api.testing.fake_grok import FakeGrok
from grok2api.upstream import GrokClient, UpstreamError

from .conftest import GROK3, PoolFactory, chat, grok_settings, set_token

WORKER = Path(__file__).with_name("worker.py")


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_a_success_syncs_the_quota_of_the_bucket_it_used(pool: TokenPool, client: GrokClient,
                                                               fake_grok: FakeGrok, settings: Settings) -> None:
    set_token(settings, sync_after_use=True)
    fake_grok.add_account("acct-a", limits={"grok-3": 5})
    await pool.add(["acct-a"])
    await pool.call(GROK3, chat(client))
    account = pool.get("acct-a")
    await until(lambda: account.quota != UNKNOWN)
    assert account.quota == 4 and account.last_sync_at is not None
    assert fake_grok.requests_to("rate_limits")[0].json["modelName"] == "grok-3"


async def test_syncs_after_use_are_spaced_by_the_minimum_interval(pool: TokenPool, client: GrokClient,
                                                                   fake_grok: FakeGrok, settings: Settings) -> None:
    set_token(settings, sync_after_use=True, sync_min_interval_sec=3600)
    fake_grok.add_account("acct-a", limits={"grok-3": 50})
    await pool.add(["acct-a"])
    for _ in range(3):
        await pool.call(GROK3, chat(client))
        await until(lambda: not pool._refresher._pending)  # noqa: SLF001 - let a started sync land
    assert len(fake_grok.requests_to("rate_limits")) == 1  # the local estimate carried the other two
    assert pool.get("acct-a").quota == 47
    set_token(settings, sync_min_interval_sec=0)
    await pool.call(GROK3, chat(client))
    await until(lambda: len(fake_grok.requests_to("rate_limits")) == 2)


async def test_an_operator_refresh_reports_done_failed_and_remaining(pool: TokenPool, fake_grok: FakeGrok) -> None:
    for token in ("acct-a", "acct-b", "acct-c"):
        fake_grok.add_account(token, tier="super" if token == "acct-c" else "basic")
    await pool.add(["acct-a", "acct-b"])
    await pool.add(["acct-c"], pool="ssoSuper")
    fake_grok.inject("invalid_credentials", account="acct-b", endpoint="rate_limits")
    progress = await pool.refresh()
    assert progress.state in ("waiting", "running") and progress.total == 3
    await progress.wait()
    assert (progress.state, progress.done, progress.failed, progress.remaining) == ("finished", 2, 1, 0)
    assert list(progress.errors.values()) == ["invalid_credentials"]
    assert pool.get("acct-a").quota == 80 and pool.get("acct-b").fail_count == 1
    assert (pool.get("acct-c").quota, pool.get("acct-c").heavy_quota) == (140, 140)  # both buckets
    shared = await pool.refresh_progress()
    assert shared is not None and shared["id"] == progress.id and shared["remaining"] == 0


async def test_the_background_refresher_syncs_new_accounts_at_once(make_pool: PoolFactory, fake_grok: FakeGrok,
                                                                    settings: Settings) -> None:
    set_token(settings, auto_refresh=True)
    pool = await make_pool(background=True)
    fake_grok.add_account("acct-a")
    await pool.add(["acct-a"])
    await until(lambda: pool.get("acct-a").quota == 80)
    asked = {r.json["modelName"] for r in fake_grok.requests_to("rate_limits")}
    assert asked == {"grok-4-1-thinking-1129"}


async def test_the_background_refresher_syncs_the_accounts_a_start_loads(make_pool: PoolFactory, fake_grok: FakeGrok,
                                                                        settings: Settings) -> None:
    tokens = [f"acct-{i}" for i in range(5)]
    for token in tokens:
        fake_grok.add_account(token)
    first = await make_pool()
    await first.add(tokens)
    await first.stop()
    set_token(settings, auto_refresh=True)
    pool = await make_pool(background=True)  # the refresher's task plans every loaded account
    await until(lambda: all(pool.get(t).quota == 80 for t in tokens))
    assert len(fake_grok.requests_to("rate_limits")) == len(tokens)


async def test_a_cooling_account_is_checked_again_when_its_cooldown_ends(
        make_pool: PoolFactory, client: GrokClient, fake_grok: FakeGrok, settings: Settings) -> None:
    set_token(settings, auto_refresh=True)
    pool = await make_pool(background=True)
    fake_grok.add_account("acct-a")
    await pool.add(["acct-a"])
    account = pool.get("acct-a")
    await until(lambda: account.last_sync_at is not None)
    fake_grok.inject("rate_limited", account="acct-a", retry_after=0.4)
    with pytest.raises(UpstreamError):
        await pool.call(GROK3, chat(client))
    assert account.status is Status.COOLING
    synced = len(fake_grok.requests_to("rate_limits"))
    ended = account.cooldown_until
    await until(lambda: account.status is Status.ACTIVE and account.quota > 0)
    assert len(fake_grok.requests_to("rate_limits")) == synced + 1 and now_ms() >= ended


async def test_rate_limit_calls_share_the_usage_limit(pool: TokenPool, fake_grok: FakeGrok, settings: Settings) -> None:
    settings.performance = settings.performance.model_copy(update={"usage_max_concurrent": 2})
    tokens = [f"acct-{i}" for i in range(8)]
    for token in tokens:
        fake_grok.add_account(token)
    await pool.add(tokens)
    fake_grok.inject("slow_first_byte", endpoint="rate_limits", delay=0.1, times=None)
    started = time.monotonic()
    progress = await (await pool.refresh(tokens)).wait()
    elapsed = time.monotonic() - started
    assert progress.done == 8
    assert 0.38 <= elapsed < 1.5  # 8 calls of 0.1 s, two at a time


async def test_one_worker_refreshes_at_a_time_across_processes(pool: TokenPool, fake_grok: FakeGrok,
                                                               settings: Settings) -> None:
    tokens = [f"acct-{i:02d}" for i in range(30)]
    for token in tokens:
        fake_grok.add_account(token)
    await pool.add(tokens)
    await pool.flush()
    fake_grok.inject("slow_first_byte", endpoint="rate_limits", delay=0.05, times=None)
    overrides = {"grok": grok_settings(fake_grok), "token": {"auto_refresh": True, "save_delay_ms": 20},
                 "performance": {"usage_max_concurrent": 2}}
    workers = [await asyncio.create_subprocess_exec(sys.executable, str(WORKER), "refresh",
                                                    orjson.dumps(overrides).decode(),
                                                    stderr=asyncio.subprocess.PIPE) for _ in range(2)]
    results = await asyncio.wait_for(asyncio.gather(*(w.communicate() for w in workers)), 60)
    for worker, (_out, err) in zip(workers, results, strict=True):
        assert worker.returncode == 0, err.decode()[-2000:]
    per_account = Counter(r.sso for r in fake_grok.requests_to("rate_limits"))
    assert per_account == Counter({token: 1 for token in tokens})  # never twice: one refresher at a time


async def test_the_refresh_plan_stays_small_however_often_it_changes(pool: TokenPool) -> None:
    await pool.add(["acct-a"])
    account, refresher = pool.get("acct-a"), pool._refresher
    for i in range(5000):
        account.last_sync_at = i  # every change moves the next check
        refresher.schedule(account)
    assert len(refresher._due) <= 1024 + 3


async def test_a_start_plans_every_account_in_its_own_task_and_a_change_meanwhile_keeps_its_plan(
        make_pool: PoolFactory, settings: Settings) -> None:
    set_token(settings, auto_refresh=False)  # the schedule is kept, nothing is synced
    tokens = [f"acct-{i:05d}" for i in range(2 * PLAN_SLICE + 10)]
    writer = await make_pool()
    await writer.add(tokens)
    await writer.flush()
    pool = await make_pool(background=True)
    refresher = pool._refresher
    assert not refresher._due  # serving needed no plan: the start left it to the refresher's task
    changed = pool.get(tokens[-1])
    changed.last_sync_at = now_ms()  # changed before its slice was planned
    refresher.schedule(changed)
    await until(lambda: len(refresher._due) == len(tokens))
    assert [e[0] for e in refresher._due if e[2] is changed] == [changed.next_check]
    assert all(pool.get(t).next_check is not None for t in tokens)
