"""A client that goes away cancels the upstream request at once and frees the account,
also while Grok is silent and nothing is being written."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from .conftest import StartGateway
from .support import API_KEY, Live

SLOW = {"idle_timeout": 10.0, "timeout": 30.0}


async def settled(live: Live, within: float = 1.0) -> float:
    """Seconds until the fake saw its chat request abandoned and the pool got the account back."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        chats = live.chats()
        if chats and chats[-1].disconnected and set(live.inflight().values()) == {0}:
            return time.monotonic() - started
        await asyncio.sleep(0.01)
    raise AssertionError(f"upstream still open: disconnected={[c.disconnected for c in live.chats()]}, "
                         f"inflight={live.inflight()}")


@pytest.mark.parametrize("gap", [False, True], ids=["streaming", "silent"])
async def test_a_departed_stream_client_cancels_upstream(start_gateway: StartGateway, gap: bool) -> None:
    live = await start_gateway(grok=SLOW)
    if gap:  # after the first words Grok goes quiet: only the disconnect watch can notice
        live.fake.inject("idle_gap", endpoint="chat", after_lines=5, delay=5.0)
    else:
        live.fake.frame_delay = 0.2
    body = {"model": "grok-4", "stream": True, "messages": [{"role": "user", "content": "a b c d e f g h i j"}]}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        response = await http.post(f"{live.url}/v1/chat/completions", json=body)
        assert response.status == 200
        while b'"content":"Echo:' not in await response.content.readline():
            pass
        assert live.inflight() == {"basic-1": 1}
        response.close()  # drops the connection mid-stream
        assert await settled(live) < 0.5
    assert live.account("basic-1").status == "active"


async def test_a_departed_client_of_a_json_answer_cancels_upstream(start_gateway: StartGateway) -> None:
    live = await start_gateway(grok=SLOW)
    live.fake.inject("idle_gap", endpoint="chat", after_lines=5, delay=5.0)
    body = {"model": "grok-4", "messages": [{"role": "user", "content": "wait for it"}]}
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        request = asyncio.ensure_future(http.post(f"{live.url}/v1/chat/completions", json=body))
        while not live.chats() or live.inflight() == {"basic-1": 0}:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
    assert await settled(live) < 0.5
