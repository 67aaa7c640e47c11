"""Every transition of the state machine, driven through the pool by the fake Grok's faults."""

from __future__ import annotations

import asyncio

import pytest

from grok2api.config.settings import Settings
from grok2api.pool import UNKNOWN, Status, TokenPool
from grok2api.pool.account import now_ms
from grok2api.pool.errors import InvalidAccountField, NoAccountAvailable
from grok2api.testing.fake_grok import FakeGrok
from grok2api.upstream import Failure, GrokClient, UpstreamError

from .conftest import GROK3, HEAVY, chat, set_token


async def accounts(pool: TokenPool, fake: FakeGrok, *tokens: str, tier: str = "basic") -> None:
    for token in tokens:
        fake.add_account(token, tier=tier)  # type: ignore[arg-type]
    await pool.add(tokens, pool="ssoSuper" if tier == "super" else None)


async def failing_call(pool: TokenPool, client: GrokClient, model=GROK3) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        await pool.call(model, chat(client, model))
    return caught.value


async def test_a_success_resets_the_consecutive_failure_count(pool: TokenPool, client: GrokClient,
                                                              fake_grok: FakeGrok) -> None:
    await accounts(pool, fake_grok, "acct-a")
    fake_grok.inject("invalid_credentials", account="acct-a")
    assert (await failing_call(pool, client)).failure is Failure.INVALID_CREDENTIALS
    account = pool.get("acct-a")
    assert account is not None and (account.status, account.fail_count) == (Status.ACTIVE, 1)
    await pool.call(GROK3, chat(client))
    assert (account.fail_count, account.use_count) == (0, 1)


async def test_invalid_credentials_threshold_times_in_a_row_expire(pool: TokenPool, client: GrokClient,
                                                                    fake_grok: FakeGrok) -> None:
    await accounts(pool, fake_grok, "acct-a")
    fake_grok.inject("invalid_credentials", account="acct-a", times=2)  # fail_threshold is 2
    await failing_call(pool, client)
    assert pool.get("acct-a").status is Status.ACTIVE
    await failing_call(pool, client)
    assert pool.get("acct-a").status is Status.EXPIRED
    with pytest.raises(NoAccountAvailable) as caught:
        await pool.acquire(GROK3)
    assert caught.value.retry_after is None
    assert "expired or disabled" in caught.value.message


async def test_a_blocked_account_expires_at_once(pool: TokenPool, client: GrokClient, fake_grok: FakeGrok) -> None:
    await accounts(pool, fake_grok, "acct-a")
    fake_grok.inject("blocked", account="acct-a")
    assert (await failing_call(pool, client)).failure is Failure.BLOCKED
    account = pool.get("acct-a")
    assert account.status is Status.EXPIRED
    assert account.failures == {"blocked": 1} and account.last_fail_reason.startswith("blocked")


async def test_a_rate_limit_cools_until_the_upstreams_reset(pool: TokenPool, client: GrokClient,
                                                            fake_grok: FakeGrok) -> None:
    await accounts(pool, fake_grok, "acct-a")
    fake_grok.inject("rate_limited", account="acct-a", retry_after=30)
    before = now_ms()
    assert (await failing_call(pool, client)).failure is Failure.RATE_LIMITED
    account = pool.get("acct-a")
    assert account.status is Status.COOLING and account.quota == 0
    assert before + 29_000 <= account.cooldown_until <= now_ms() + 30_000
    with pytest.raises(NoAccountAvailable) as caught:
        await pool.acquire(GROK3)
    assert caught.value.retry_after is not None
    assert 29 <= caught.value.retry_after <= 30


async def test_a_rate_limit_without_reset_backs_off_exponentially_up_to_the_cap(
        pool: TokenPool, client: GrokClient, fake_grok: FakeGrok) -> None:
    await accounts(pool, fake_grok, "acct-a")
    account = pool.get("acct-a")
    waits = []
    for _ in range(3):  # base 0.3 s, cap 1 s
        fake_grok.inject("rate_limited", account="acct-a")
        await failing_call(pool, client)
        waits.append(account.cooldown_until - account.last_fail_at)
        await asyncio.sleep(account.cooldown_until / 1000 - now_ms() / 1000 + 0.02)
    assert waits == [300, 600, 1000]
    await pool.call(GROK3, chat(client))  # the cooldown ended: it serves again
    assert (account.status, account.rate_limit_streak) == (Status.ACTIVE, 0)


@pytest.mark.parametrize(("fault", "failure"), [
    ("anti_bot", Failure.ANTI_BOT), ("cloudflare", Failure.CLOUDFLARE), ("cloudflare_empty", Failure.CLOUDFLARE),
])
async def test_anti_bot_and_cloudflare_move_on_without_penalty_and_count_globally(
        pool: TokenPool, client: GrokClient, fake_grok: FakeGrok, fault: str, failure: Failure) -> None:
    await accounts(pool, fake_grok, "acct-a", "acct-b")
    fake_grok.inject(fault)  # whichever account goes first
    await pool.call(GROK3, chat(client))
    first, second = (r.sso for r in fake_grok.requests_to("chat"))
    assert first != second
    hit = pool.get(first)
    assert (hit.status, hit.cooldown_until, hit.fail_count) == (Status.ACTIVE, 0, 0)
    assert hit.failures == {failure.value: 1}
    await pool.flush()
    events = (await pool.stats())["events"]
    assert events[failure.value] == 1 and events["rotation"] == 1


@pytest.mark.parametrize("fault", ["server_error", "disconnect"])
async def test_5xx_and_network_failures_pause_the_account_briefly(pool: TokenPool, client: GrokClient,
                                                                  fake_grok: FakeGrok, fault: str) -> None:
    await accounts(pool, fake_grok, "acct-a")
    fake_grok.inject(fault, account="acct-a")
    error = await failing_call(pool, client)
    assert error.failure in (Failure.UPSTREAM_5XX, Failure.NETWORK_AFTER_SEND, Failure.PROTOCOL)
    account = pool.get("acct-a")
    assert account.status is Status.ACTIVE and account.cooldown_until > now_ms()
    with pytest.raises(NoAccountAvailable) as caught:
        await pool.acquire(GROK3)
    assert caught.value.retry_after is not None and "cooling down" in caught.value.message
    await asyncio.sleep(0.35)  # soft_cooldown_sec
    await pool.call(GROK3, chat(client))


async def test_moderation_is_neither_retried_nor_held_against_the_account(pool: TokenPool, client: GrokClient,
                                                                         fake_grok: FakeGrok) -> None:
    await accounts(pool, fake_grok, "acct-a", "acct-b")
    fake_grok.inject("moderated")
    assert (await failing_call(pool, client)).failure is Failure.MODERATED
    assert len(fake_grok.requests_to("chat")) == 1
    hit = pool.get(fake_grok.requests_to("chat")[0].sso)
    assert (hit.status, hit.cooldown_until) == (Status.ACTIVE, 0)


async def test_disabled_is_set_only_by_an_operator_and_stays(pool: TokenPool, client: GrokClient,
                                                             fake_grok: FakeGrok) -> None:
    await accounts(pool, fake_grok, "acct-a")
    await pool.update("acct-a", status="disabled")
    with pytest.raises(NoAccountAvailable) as caught:
        await pool.acquire(GROK3)
    assert caught.value.retry_after is None
    progress = await (await pool.refresh(["acct-a"])).wait()
    assert progress.done == 1 and pool.get("acct-a").status is Status.DISABLED  # a good sync does not revive it
    with pytest.raises(InvalidAccountField) as refused:
        await pool.update("acct-a", status="expired")
    assert refused.value.field == "status"
    await pool.update("acct-a", status="active")
    await pool.call(GROK3, chat(client))


async def test_an_expired_account_is_not_revived_by_a_refresh(pool: TokenPool, client: GrokClient,
                                                             fake_grok: FakeGrok) -> None:
    await accounts(pool, fake_grok, "acct-a")
    fake_grok.inject("blocked", account="acct-a")
    await failing_call(pool, client)
    progress = await (await pool.refresh(["acct-a"])).wait()
    account = pool.get("acct-a")
    assert progress.done == 1 and account.quota > 0 and account.status is Status.EXPIRED


async def test_the_end_of_a_cooldown_reactivates_with_the_quota_unknown(pool: TokenPool, client: GrokClient,
                                                                       fake_grok: FakeGrok) -> None:
    await accounts(pool, fake_grok, "acct-a")
    fake_grok.inject("rate_limited", account="acct-a", retry_after=0.3)
    await failing_call(pool, client)
    account = pool.get("acct-a")
    assert (account.status, account.quota) == (Status.COOLING, 0)
    await asyncio.sleep(0.35)
    lease = await pool.acquire(GROK3)
    assert lease.account is account and (account.status, account.quota) == (Status.ACTIVE, UNKNOWN)
    await lease.release()


async def test_a_heavy_rate_limit_empties_only_the_heavy_bucket(pool: TokenPool, client: GrokClient,
                                                                fake_grok: FakeGrok) -> None:
    await accounts(pool, fake_grok, "super-a", tier="super")
    fake_grok.inject("rate_limited", account="super-a", retry_after=60)
    assert (await failing_call(pool, client, HEAVY)).failure is Failure.RATE_LIMITED
    account = pool.get("super-a")
    assert (account.status, account.heavy_quota) == (Status.ACTIVE, 0) and account.heavy_reset_at > now_ms()
    with pytest.raises(NoAccountAvailable) as caught:
        await pool.acquire(HEAVY)
    assert caught.value.retry_after is not None
    await pool.call(GROK3, chat(client))  # the normal bucket still serves


async def test_settings_swapped_at_run_time_apply_to_the_next_failure(pool: TokenPool, client: GrokClient,
                                                                      fake_grok: FakeGrok, settings: Settings) -> None:
    await accounts(pool, fake_grok, "acct-a")
    set_token(settings, fail_threshold=1)
    fake_grok.inject("invalid_credentials", account="acct-a")
    await failing_call(pool, client)
    assert pool.get("acct-a").status is Status.EXPIRED
