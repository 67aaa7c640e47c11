"""Which account a request gets: candidates, preference, concurrency, and the errors when none can serve."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from grok2api.config.settings import Settings
from grok2api.pool import Lease, TokenPool
from grok2api.pool.account import now_ms
from grok2api.pool.errors import NoAccountAvailable
from grok2api.upstream import Failure, UpstreamError

from .conftest import GROK3, HEAVY, THINKING, PoolFactory, set_token


async def seed(pool: TokenPool, records: dict[str, dict]) -> None:
    """Accounts in a given state, as records of the original's shape."""
    added, _merged = await pool.add([{"token": t, **r} for t, r in records.items()])
    assert added == len(records)


async def test_known_quota_is_preferred_to_unknown(pool: TokenPool) -> None:
    await seed(pool, {"unknown": {}, "known": {"quota": 3}})
    lease = await pool.acquire(GROK3)
    assert lease.token == "known" and lease.account.quota == 2  # the cost was charged


async def test_fewest_in_flight_then_least_recently_used(pool: TokenPool) -> None:
    await seed(pool, {"a": {"quota": 50, "last_used_at": 2000}, "b": {"quota": 50, "last_used_at": 1000}})
    first = await pool.acquire(GROK3)
    assert first.token == "b"  # least recently used
    await asyncio.sleep(0.002)  # a later millisecond, so the two are not tied below
    second = await pool.acquire(GROK3)
    assert second.token == "a"  # b has a request in flight
    await first.release()
    await second.release()
    third = await pool.acquire(GROK3)
    assert third.token == "b"  # both idle: b was used before a


async def test_ties_are_broken_at_random(pool: TokenPool, make_pool: PoolFactory) -> None:
    await seed(pool, {f"t{i}": {} for i in range(4)})
    picked = Counter()
    for _ in range(40):  # a fresh worker each time: four accounts, all equal
        lease = await (await make_pool()).acquire(GROK3)
        picked[lease.token] += 1
    assert len(picked) == 4


async def test_basic_accounts_first_super_as_fallback_super_models_only_on_super(
        pool: TokenPool) -> None:
    await seed(pool, {"basic": {"pool": "ssoBasic", "quota": 1}, "super": {"pool": "ssoSuper", "quota": 90},
                               "other": {"pool": "elsewhere", "quota": 90}})
    lease = await pool.acquire(GROK3)
    assert lease.token == "basic"
    fallback = await pool.acquire(GROK3)  # basic's last unit is taken
    assert fallback.token == "super"
    heavy = await pool.acquire(HEAVY)
    assert heavy.token == "super" and heavy.account.heavy_quota == -1  # unknown, not charged
    for held in (lease, fallback, heavy):
        await held.release()


async def test_the_models_cost_is_charged_and_a_failure_gives_it_back(pool: TokenPool) -> None:
    await seed(pool, {"a": {"quota": 6}})
    lease = await pool.acquire(THINKING)
    assert lease.account.quota == 2
    await lease.release(UpstreamError(Failure.UPSTREAM_5XX, "boom", status=502))
    assert lease.account.quota == 6


async def test_an_account_at_zero_is_not_a_candidate(pool: TokenPool) -> None:
    await seed(pool, {"empty": {"quota": 0}, "full": {}})
    leases = [await pool.acquire(GROK3) for _ in range(2)]
    assert {lease.token for lease in leases} == {"full"}


async def test_concurrent_requests_never_both_take_the_last_unit(pool: TokenPool) -> None:
    await seed(pool, {"a": {"quota": 1}})
    results = await asyncio.gather(*(pool.acquire(GROK3) for _ in range(10)), return_exceptions=True)
    won = [r for r in results if isinstance(r, Lease)]
    assert len(won) == 1 and won[0].account.quota == 0
    assert all(isinstance(r, NoAccountAvailable) and r.retry_after is not None for r in results if r not in won)


async def test_the_concurrency_limit_per_account_holds_under_a_burst(pool: TokenPool,
                                                                    settings: Settings) -> None:
    await seed(pool, {f"t{i}": {} for i in range(5)})  # max 2 in flight each

    async def hold() -> str:
        lease = await pool.acquire(GROK3)
        await asyncio.sleep(0.05)
        await lease.release()
        return lease.token

    results = await asyncio.gather(*(hold() for _ in range(12)), return_exceptions=True)
    served = Counter(r for r in results if isinstance(r, str))
    assert sum(served.values()) == 10 and set(served.values()) == {2}
    refused = [r for r in results if isinstance(r, NoAccountAvailable)]
    assert len(refused) == 2 and "busy" in refused[0].message and refused[0].retry_after == 1
    set_token(settings, max_inflight_per_account=1)
    held = [await pool.acquire(GROK3) for _ in range(5)]
    assert len({lease.token for lease in held}) == 5
    with pytest.raises(NoAccountAvailable):
        await pool.acquire(GROK3)


async def test_excluded_accounts_are_skipped(pool: TokenPool) -> None:
    await seed(pool, {"a": {"quota": 9}, "b": {}})
    lease = await pool.acquire(GROK3, exclude=["a"])
    assert lease.token == "b"
    with pytest.raises(NoAccountAvailable) as caught:
        await pool.acquire(GROK3, exclude=["a", "b"])
    assert "already tried" in caught.value.message


async def test_no_account_configured_is_a_503_that_says_so(pool: TokenPool) -> None:
    with pytest.raises(NoAccountAvailable) as caught:
        await pool.acquire(GROK3)
    assert caught.value.retry_after is None
    assert "none is configured" in caught.value.message
    await seed(pool, {"b": {"pool": "ssoBasic"}})
    with pytest.raises(NoAccountAvailable) as heavy:
        await pool.acquire(HEAVY)
    assert heavy.value.retry_after is None and "ssoSuper" in heavy.value.message


async def test_all_cooling_is_a_429_with_the_earliest_recovery(pool: TokenPool) -> None:
    now = now_ms()
    await seed(pool, {
        "soon": {"status": "cooling", "quota": 0, "cooldown_until": now + 12_000},
        "later": {"status": "cooling", "quota": 0, "cooldown_until": now + 50_000},
        "dead": {"status": "expired"},
    })
    with pytest.raises(NoAccountAvailable) as caught:
        await pool.acquire(GROK3)
    assert caught.value.retry_after in (12, 13)


async def test_the_selection_heaps_stay_small_under_churn(pool: TokenPool) -> None:
    await seed(pool, {"a": {}, "b": {"quota": 10_000}})
    for _ in range(5000):
        await (await pool.acquire(GROK3)).release()
    groups = pool._selector._groups.values()
    assert groups and all(len(g.ready) + len(g.waiting) <= 3 * 2 + 64 + 1 for g in groups)
