"""API-key daily quotas: charged right before going upstream, by the reference's buckets."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from grok2api.api import KEYS, key_id

from .conftest import StartGateway
from .support import API_KEY, Live, error_of

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


async def usage(live: Live) -> dict[str, int]:
    (row,) = [r for r in await live.app[KEYS].list_rows() if r["id"] == key_id(API_KEY)]
    return {bucket.removesuffix("_used"): used for bucket, used in row["usage_today"].items()}


async def test_refused_requests_are_not_charged_and_the_limit_holds(start_gateway: StartGateway) -> None:
    live = await start_gateway(limits={"chat_limit": 2})
    client = live.aclient()
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="grok-4", messages=[{"role": "tool", "content": 5}])  # type: ignore[list-item, misc]
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="grok-4", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/x.png"}}]}])
    assert (await usage(live))["chat"] == 0
    for _ in range(2):
        await client.chat.completions.create(model="grok-4", messages=HI)
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="grok-4", messages=HI, stream=True)
    assert error_of(caught.value)["code"] == "daily_quota_exceeded"
    assert len(live.chats()) == 2 and (await usage(live))["chat"] == 2


async def test_heavy_draws_on_heavy_and_chat(start_gateway: StartGateway) -> None:
    live = await start_gateway(super_=["super-1"], limits={"heavy_limit": 1})
    client = live.aclient()
    await client.chat.completions.create(model="grok-4-heavy", messages=HI)
    assert await usage(live) == {"chat": 1, "heavy": 1, "image": 0, "video": 0}
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="grok-4-heavy", messages=HI)
    assert "heavy" in error_of(caught.value)["message"]
    await client.chat.completions.create(model="grok-4", messages=HI)
