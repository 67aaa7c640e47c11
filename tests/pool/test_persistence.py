"""Persistence: record by record, debounced, flushed on shutdown; workers see each other's changes."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path

import orjson
import pytest
import pytest_asyncio

from grok2api.config.settings import Settings
from grok2api.pool import Status, TokenPool
from grok2api.pool.account import NS_COUNTS
from grok2api.pool.errors import NoAccountAvailable
from grok2api.storage import NS_ACCOUNTS, Change, Storage
from grok2api.testing.fake_grok import FakeGrok
from grok2api.upstream import Failure, GrokClient, UpstreamError
from grok2api_plugins.storage_local.engine import LocalStorage

from .conftest import GROK3, PoolFactory, chat, grok_settings, set_token

WORKER = Path(__file__).with_name("worker.py")


@pytest_asyncio.fixture
async def other_storage(settings: Settings):
    """A second connection to the same SQLite file: what another worker process has."""
    engine = LocalStorage(settings)
    await engine.open()
    yield engine
    await engine.close()


async def follow(storage: Storage, pool: TokenPool, since: int) -> int:
    """Do what the kernel's change-feed watcher does for the accounts namespace."""
    for change in await storage.changes_since(since):
        since = change.seq
        await pool.apply_change(change)
    return since


async def test_a_restart_loses_nothing(make_pool: PoolFactory, client: GrokClient, fake_grok: FakeGrok,
                                      settings: Settings, other_storage: Storage) -> None:
    set_token(settings, save_delay_ms=60_000)  # nothing is written before shutdown
    for token in ("acct-a", "acct-b"):
        fake_grok.add_account(token)
    pool = await make_pool()
    await pool.add([{"token": "acct-a", "note": "first", "tags": ["x"], "custom": 1}, "sso=acct-b"])
    for _ in range(3):
        await pool.call(GROK3, chat(client))
    fake_grok.inject("rate_limited", retry_after=120, times=2)
    with pytest.raises(UpstreamError):  # both accounts cool down
        await pool.call(GROK3, chat(client))
    assert {a.status for a in pool.accounts()} == {Status.COOLING}
    before = {a.token: a.to_record() for a in pool.accounts()}
    assert (await other_storage.get(NS_ACCOUNTS, "acct-a"))["use_count"] == 0  # still pending
    await pool.stop()
    reloaded = await make_pool(on=other_storage)
    assert {a.token: a.to_record() for a in reloaded.accounts()} == before
    assert reloaded.get("acct-a").to_record()["custom"] == 1


async def test_sigterm_flushes_the_pool_before_the_process_ends(pool: TokenPool, fake_grok: FakeGrok,
                                                                settings: Settings) -> None:
    for token in ("acct-a", "acct-b"):
        fake_grok.add_account(token)
    await pool.add(["acct-a", "acct-b"])
    await pool.flush()
    overrides = {"grok": grok_settings(fake_grok), "token": {"save_delay_ms": 60_000}}
    worker = await asyncio.create_subprocess_exec(sys.executable, str(WORKER), "serve",
                                                  orjson.dumps(overrides).decode(),
                                                  "5", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    line = await asyncio.wait_for(worker.stdout.readline(), 30)
    assert line.startswith(b"ready"), (line, await worker.stderr.read())
    served = orjson.loads(line.split(b" ", 1)[1])
    worker.send_signal(signal.SIGTERM)
    _out, err = await asyncio.wait_for(worker.communicate(), 30)
    assert worker.returncode == 0, err.decode()[-2000:]
    await pool.apply_change(Change(0, "", "", "reset"))  # reload everything
    assert {a.token: a.use_count for a in pool.accounts()} == served and sum(served.values()) == 5


async def test_a_reload_after_requests_serves_from_what_storage_holds(pool: TokenPool, other_storage: Storage) -> None:
    """The selection heaps built by earlier requests are built again from the reloaded accounts."""
    await pool.add(["acct-a", "acct-b"])
    await (await pool.acquire(GROK3)).release()
    await other_storage.patch(NS_ACCOUNTS, "acct-a", {"status": "disabled"})  # another worker's writes
    await other_storage.delete_many(NS_ACCOUNTS, ["acct-b"])
    await other_storage.put(NS_ACCOUNTS, "acct-c", {"token": "acct-c", "quota": 10})
    await pool.apply_change(Change(0, "", "", "reset"))
    assert pool.get("acct-b") is None and pool.get("acct-a").status is Status.DISABLED
    leases = [await pool.acquire(GROK3) for _ in range(2)]  # two in flight at most per account
    assert [lease.token for lease in leases] == ["acct-c", "acct-c"]
    with pytest.raises(NoAccountAvailable):
        await pool.acquire(GROK3)
    for lease in leases:
        await lease.release()
    assert (await pool.stats())["total"] == 2


async def test_workers_see_each_others_changes_and_keep_their_own_pending_ones(
        make_pool: PoolFactory, storage: Storage, other_storage: Storage, settings: Settings) -> None:
    first = await make_pool()
    await first.add([{"token": "shared", "quota": 50}, "other"])
    second = await make_pool(on=other_storage)
    seq = await other_storage.last_change()
    set_token(settings, save_delay_ms=60_000)
    lease = await second.acquire(GROK3)  # charges 1 to shared's estimate in the second worker only
    assert lease.token == "shared"
    await first.update("shared", note="from the admin", status="disabled")
    seq = await follow(other_storage, second, seq)
    account = second.get("shared")
    assert (account.note, account.status, account.quota) == ("from the admin", Status.DISABLED, 49)
    await second.flush()
    stored = await storage.get(NS_ACCOUNTS, "shared")
    assert (stored["note"], stored["status"], stored["quota"]) == ("from the admin", "disabled", 49)
    await lease.release()


async def test_a_removed_account_is_not_written_back(make_pool: PoolFactory, storage: Storage,
                                                     other_storage: Storage, settings: Settings) -> None:
    first = await make_pool()
    await first.add(["gone", "kept"])
    second = await make_pool(on=other_storage)
    set_token(settings, save_delay_ms=60_000)
    lease = await second.acquire(GROK3, exclude=["kept"])
    seq = await other_storage.last_change()
    assert await first.remove(["sso=gone"]) == 1
    await follow(other_storage, second, seq)
    assert second.get("gone") is None
    await lease.release()
    await second.flush()
    assert set(await storage.list(NS_ACCOUNTS)) == {"kept"}


async def test_duplicates_are_merged_not_doubled(pool: TokenPool, storage: Storage) -> None:
    assert await pool.add(["abc", "sso=abc", "sso-rw=x; sso=abc", "  ", "xyz"]) == (2, 2)
    assert await pool.add([{"token": "abc", "note": "n", "tags": ["t"]}], pool="ssoSuper") == (0, 1)
    account = pool.get("abc")
    assert (account.pool, account.note, account.tags) == ("ssoSuper", "n", ("t",))
    assert set(await storage.list(NS_ACCOUNTS)) == {"abc", "xyz"}
    assert (await storage.get(NS_ACCOUNTS, "abc"))["pool"] == "ssoSuper"


async def test_writes_name_their_fields_only(pool: TokenPool, storage: Storage, other_storage: Storage) -> None:
    await pool.add(["acct-a"])
    await other_storage.patch(NS_ACCOUNTS, "acct-a", {"note": "written elsewhere", "future_field": 7})
    lease = await pool.acquire(GROK3)
    await lease.release()
    await pool.flush()
    stored = await storage.get(NS_ACCOUNTS, "acct-a")
    assert stored["note"] == "written elsewhere" and stored["future_field"] == 7 and stored["use_count"] == 0
    assert await storage.counters(NS_COUNTS, "acct-a") == {"use_count": 1}  # a shared counter, not the base


async def test_an_operators_disable_wins_over_a_status_not_yet_written(
        make_pool: PoolFactory, storage: Storage, other_storage: Storage, settings: Settings) -> None:
    first = await make_pool()
    await first.add(["acct-a"])
    second = await make_pool(on=other_storage)
    seq = await other_storage.last_change()
    set_token(settings, save_delay_ms=60_000)
    lease = await second.acquire(GROK3)
    await lease.release(UpstreamError(Failure.RATE_LIMITED, "rate limited", status=429, retry_after=60))
    assert second.get("acct-a").status is Status.COOLING  # not written yet
    await first.update("acct-a", status="disabled")
    await follow(other_storage, second, seq)
    assert second.get("acct-a").status is Status.DISABLED
    await second.flush()
    stored = await storage.get(NS_ACCOUNTS, "acct-a")
    assert stored["status"] == "disabled" and stored["quota"] == 0  # the rate limit's other fields stay


async def test_a_worker_does_not_read_back_what_it_wrote_itself(
        make_pool: PoolFactory, storage: Storage, other_storage: Storage) -> None:
    pool = await make_pool()
    await pool.add(["acct-a"])
    seq = await storage.last_change()
    await storage.patch(NS_ACCOUNTS, "acct-a", {"note": "through this worker's storage"})
    await other_storage.patch(NS_ACCOUNTS, "acct-a", {"tags": ["from another worker"]})
    await follow(storage, pool, seq)
    account = pool.get("acct-a")
    # its own change is skipped (what it writes went through the pool); the other is taken,
    # and with it the stored record as it now is
    assert (account.note, list(account.tags)) == ("through this worker's storage", ["from another worker"])
    seq = await storage.last_change()
    await storage.patch(NS_ACCOUNTS, "acct-a", {"note": "again"})
    await follow(storage, pool, seq)
    assert pool.get("acct-a").note == "through this worker's storage"


@pytest.mark.parametrize("turns", [0, 1, 3])
async def test_a_cancelled_flush_leaves_the_round_to_finish(make_pool: PoolFactory, settings: Settings,
                                                            storage: Storage, turns: int) -> None:
    set_token(settings, save_delay_ms=60_000)
    pool = await make_pool()
    await pool.add(["acct-a"])
    await (await pool.acquire(GROK3)).release()  # last use and use count now wait for a round
    flusher = asyncio.create_task(pool.flush())
    for _ in range(turns):  # cancelled before its round started, or while it runs
        await asyncio.sleep(0)
    flusher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await flusher
    await pool.flush()
    stored = await storage.get(NS_ACCOUNTS, "acct-a")
    assert stored["last_used_at"] == pool.get("acct-a").last_used_at
    assert await storage.counters(NS_COUNTS, "acct-a") == {"use_count": 1}
