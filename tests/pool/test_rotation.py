"""Retry with rotation: a retryable failure moves the request to another account, until the
upstream has started streaming to the client."""

from __future__ import annotations

import pytest

from grok2api.pool import Status, TokenPool
from grok2api.pool.errors import NoAccountAvailable
from grok2api.testing.fake_grok import FakeGrok
from grok2api.upstream import Failure, GrokClient, ModelResponse, UpstreamError

from .conftest import GROK3, chat, open_chat


async def three_accounts(pool: TokenPool, fake: FakeGrok) -> None:
    for token in ("acct-a", "acct-b", "acct-c"):
        fake.add_account(token)
    await pool.add(["acct-a", "acct-b", "acct-c"])


def chat_accounts(fake: FakeGrok) -> list[str]:
    return [r.sso for r in fake.requests_to("chat")]


async def test_a_rate_limited_request_moves_to_another_account(pool: TokenPool, client: GrokClient,
                                                              fake_grok: FakeGrok) -> None:
    await three_accounts(pool, fake_grok)
    fake_grok.inject("rate_limited", retry_after=60)
    events = await pool.call(GROK3, chat(client))
    assert any(isinstance(e, ModelResponse) for e in events)
    first, second = chat_accounts(fake_grok)
    assert first != second
    assert pool.get(first).status is Status.COOLING and pool.get(second).use_count == 1


async def test_rotation_is_bounded_by_max_retry_and_raises_the_last_failure(pool: TokenPool, client: GrokClient,
                                                                           fake_grok: FakeGrok) -> None:
    await three_accounts(pool, fake_grok)
    fake_grok.inject("server_error", status=503, times=None)
    with pytest.raises(UpstreamError) as caught:
        await pool.call(GROK3, chat(client))
    assert caught.value.failure is Failure.UPSTREAM_5XX and caught.value.retry_after is None
    assert len(set(chat_accounts(fake_grok))) == 3  # max_retry 2: three accounts, each once


async def test_a_status_outside_the_retry_list_is_not_retried(pool: TokenPool, client: GrokClient,
                                                             fake_grok: FakeGrok) -> None:
    await three_accounts(pool, fake_grok)
    fake_grok.inject("server_error", status=500)
    with pytest.raises(UpstreamError):
        await pool.call(GROK3, chat(client))
    assert len(chat_accounts(fake_grok)) == 1


async def test_running_out_of_accounts_reports_the_upstreams_failure(pool: TokenPool, client: GrokClient,
                                                                     fake_grok: FakeGrok) -> None:
    fake_grok.add_account("acct-a")
    await pool.add(["acct-a"])
    fake_grok.inject("rate_limited", retry_after=60)
    with pytest.raises(UpstreamError) as caught:
        await pool.call(GROK3, chat(client))
    assert caught.value.failure is Failure.RATE_LIMITED
    with pytest.raises(NoAccountAvailable) as next_request:
        await pool.call(GROK3, chat(client))
    assert next_request.value.retry_after is not None


async def test_a_stream_rotates_before_its_first_event(pool: TokenPool, client: GrokClient,
                                                       fake_grok: FakeGrok) -> None:
    await three_accounts(pool, fake_grok)
    fake_grok.inject("anti_bot")
    stream = await pool.stream(GROK3, open_chat(client))
    events = [event async for event in stream]
    assert any(isinstance(e, ModelResponse) for e in events)
    first, second = chat_accounts(fake_grok)
    assert stream.lease.token == second != first and stream.lease.returned
    assert stream.lease.account.use_count == 1 and stream.lease.account.inflight == 0


async def test_a_stream_is_never_replayed_once_it_has_started(pool: TokenPool, client: GrokClient,
                                                              fake_grok: FakeGrok) -> None:
    await three_accounts(pool, fake_grok)
    fake_grok.inject("usage_limit", after_lines=2)  # the usage-limit error arrives mid-stream
    stream = await pool.stream(GROK3, open_chat(client))
    with pytest.raises(UpstreamError) as caught:
        async for _event in stream:
            pass
    assert caught.value.failure is Failure.RATE_LIMITED
    assert len(chat_accounts(fake_grok)) == 1
    assert stream.lease.returned and stream.lease.account.status is Status.COOLING


async def test_closing_a_stream_early_returns_the_account_without_a_verdict(pool: TokenPool, client: GrokClient,
                                                                           fake_grok: FakeGrok) -> None:
    await three_accounts(pool, fake_grok)
    stream = await pool.stream(GROK3, open_chat(client))
    async with stream:
        await anext(stream)
    account = stream.lease.account
    assert stream.lease.returned and (account.inflight, account.use_count, account.failures) == (0, 0, None)
    await stream.release(UpstreamError(Failure.PROTOCOL, "too late"))  # already returned: a no-op
    assert account.failures is None
