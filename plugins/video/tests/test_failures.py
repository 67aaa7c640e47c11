"""Honest failures of the chat path: moderation, account rotation, a stream cut mid-way, the key's limit."""

from __future__ import annotations

import openai
import pytest

from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.fake_grok.faults import Endpoint

from .conftest import StartGateway

MODEL = "grok-imagine-1.0-video"


async def test_moderated_video_is_a_content_policy_error(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    async with live.aclient() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model=MODEL, stream=False,
                                                 messages=[{"role": "user", "content": "[moderate] this"}])
    assert caught.value.code == "content_policy_violation"
    assert await live.video_used() == 0


async def test_moderation_mid_stream_ends_with_an_error_chunk(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    async with live.aclient() as client:
        stream = await client.chat.completions.create(model=MODEL, stream=True,
                                                      messages=[{"role": "user", "content": "[moderate] this"}])
        reasoning = []
        with pytest.raises(openai.APIError) as caught:
            async for chunk in stream:
                reasoning.append(getattr(chunk.choices[0].delta, "reasoning_content", None) or "")
    assert "content moderation" in caught.value.message and "Generating video: 1%\n" in reasoning
    assert await live.video_used() == 0


async def test_refused_media_post_is_a_content_policy_error(start_gateway: StartGateway,
                                                            fake_grok: FakeGrok) -> None:
    live = await start_gateway()
    fake_grok.inject("moderated", endpoint=Endpoint.MEDIA_POST)
    async with live.aclient() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "content_policy_violation"
    assert not fake_grok.requests_to(Endpoint.CHAT)


async def test_failure_before_the_first_byte_rotates_accounts(start_gateway: StartGateway,
                                                              fake_grok: FakeGrok) -> None:
    live = await start_gateway(basic=["basic-1", "basic-2"])
    fake_grok.inject("anti_bot", endpoint=Endpoint.MEDIA_POST, times=1)
    async with live.aclient() as client:
        done = await client.chat.completions.create(model=MODEL, stream=True,
                                                    messages=[{"role": "user", "content": "x"}])
        content = "".join([c.choices[0].delta.content or "" async for c in done if c.choices])
    assert "<video" in content
    posts = fake_grok.requests_to(Endpoint.MEDIA_POST)
    assert len(posts) == 2 and posts[0].sso != posts[1].sso
    (chat,) = fake_grok.requests_to(Endpoint.CHAT)
    assert chat.sso == posts[1].sso


async def test_every_account_failing_is_an_http_status(start_gateway: StartGateway, fake_grok: FakeGrok) -> None:
    live = await start_gateway()
    fake_grok.inject("server_error", endpoint=Endpoint.CHAT, times=None)
    async with live.aclient() as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model=MODEL, stream=True,
                                                 messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 502
    assert await live.video_used() == 0


async def test_a_stream_cut_mid_way_ends_with_an_error_chunk(start_gateway: StartGateway,
                                                             fake_grok: FakeGrok) -> None:
    live = await start_gateway()
    fake_grok.inject("drop", endpoint=Endpoint.CHAT, after_lines=4)
    async with live.aclient() as client:
        stream = await client.chat.completions.create(model=MODEL, stream=True,
                                                      messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.APIError) as caught:
            async for _ in stream:
                pass
    assert "Grok upstream failed" in caught.value.message
    assert await live.video_used() == 0


async def test_the_daily_video_limit_counts_videos_delivered(start_gateway: StartGateway) -> None:
    live = await start_gateway(limits={"video_limit": 1})
    async with live.aclient() as client:
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "[moderate]"}])
        await client.chat.completions.create(model=MODEL, stream=False, messages=[{"role": "user", "content": "x"}])
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert caught.value.code == "daily_quota_exceeded"
    assert await live.video_used() == 1
