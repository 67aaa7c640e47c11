"""Honest results: moderation, rate limits and upstream trouble as statuses, fewer
pictures when only some were made, quota counting what was delivered, and a client
that leaves cancelling Grok and freeing the account."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import openai
import pytest

from .conftest import StartGateway
from .support import API_KEY, Live, key_usage

METHODS = ["legacy", "imagine_ws_experimental"]
ASK = {"model": "grok-imagine-1.0", "prompt": "a fox"}


@pytest.mark.parametrize(("method", "how"), [("legacy", "prompt"), ("imagine_ws_experimental", "prompt"),
                                           ("legacy", "403")])
async def test_moderation_is_a_content_policy_error(start_gateway: StartGateway, method: str, how: str) -> None:
    """Moderated pictures in the stream or on the socket, or chat's content-moderated 403."""
    live = await start_gateway(method)
    prompt = "a fox [moderate]"
    if how == "403":
        live.fake.inject("moderated", endpoint="chat")
        prompt = "a fox"
    with pytest.raises(openai.BadRequestError) as caught:
        await live.aclient().images.generate(model="grok-imagine-1.0", prompt=prompt, n=2)
    assert caught.value.code == "content_policy_violation" and caught.value.param == "prompt"
    assert await key_usage(live) == 0


@pytest.mark.parametrize("method", METHODS)
async def test_all_accounts_rate_limited(start_gateway: StartGateway, method: str) -> None:
    live = await start_gateway(method, basic=["basic-1", "basic-2"])
    live.fake.inject("rate_limited", endpoint="chat" if method == "legacy" else "imagine", times=None)
    with pytest.raises(openai.RateLimitError) as caught:
        await live.aclient().images.generate(**ASK)
    assert caught.value.code == "rate_limit_exceeded"
    tried = live.fake.requests_to("chat" if method == "legacy" else "imagine")
    assert {r.sso for r in tried} == {"basic-1", "basic-2"}
    assert await key_usage(live) == 0


@pytest.mark.parametrize("method", METHODS)
async def test_a_refused_account_moves_the_request_to_another(start_gateway: StartGateway, method: str) -> None:
    live = await start_gateway(method, basic=["basic-1", "basic-2"])
    live.fake.inject("rate_limited", endpoint="chat" if method == "legacy" else "imagine")
    answer = await live.aclient().images.generate(**ASK)
    assert len(answer.data) == 1
    assert sorted(a.status for a in map(live.account, live.tokens)) == ["active", "cooling"]


@pytest.mark.parametrize(("fault", "params", "status"), [
    ("server_error", {"status": 500}, 502), ("slow_first_byte", {"delay": 1.0}, 504)])
async def test_upstream_trouble_by_class(start_gateway: StartGateway, fault: str, params: dict[str, Any],
                                         status: int) -> None:
    live = await start_gateway(grok={"first_byte_timeout": 0.3})
    live.fake.inject(fault, endpoint="chat", **params)
    with pytest.raises(openai.APIStatusError) as caught:
        await live.aclient().images.generate(**ASK)
    assert caught.value.status_code == status


async def test_no_account_at_all_is_503(start_gateway: StartGateway) -> None:
    live = await start_gateway(basic=[])
    with pytest.raises(openai.InternalServerError) as caught:
        await live.aclient().images.generate(**ASK)
    assert (caught.value.status_code, caught.value.code) == (503, "no_available_token")


@pytest.mark.parametrize("method", METHODS)
async def test_fewer_pictures_are_exactly_those_made_and_charged(start_gateway: StartGateway, method: str) -> None:
    live = await start_gateway(method, limits={"image_limit": 10})
    if method == "legacy":  # one of the two calls fails
        live.fake.inject("server_error", endpoint="chat", status=500)
        prompt, made = "a fox", 2
    else:  # one slot of the round is refused
        prompt, made = "a fox [moderate-first]", 3
    answer = await live.aclient().images.generate(model="grok-imagine-1.0", prompt=prompt, n=4,
                                                  response_format="b64_json")
    assert len(answer.data) == made and all(item.b64_json for item in answer.data)
    assert await key_usage(live) == made


async def test_the_daily_limit_counts_pictures(start_gateway: StartGateway) -> None:
    live = await start_gateway(limits={"image_limit": 5})
    await live.aclient().images.generate(**ASK, n=4)
    with pytest.raises(openai.RateLimitError) as caught:
        await live.aclient().images.generate(**ASK, n=2)
    assert caught.value.code == "daily_quota_exceeded" and await key_usage(live) == 4
    assert len((await live.aclient().images.generate(**ASK, n=1)).data) == 1
    assert await key_usage(live) == 5


async def settled(live: Live, endpoint: str, within: float = 3.0) -> float:
    """Seconds until the fake saw its request abandoned, the pool got the account back and
    the key its reserved pictures."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        calls = live.fake.requests_to(endpoint)
        if calls and all(c.disconnected for c in calls) and set(live.inflight().values()) == {0} \
                and await key_usage(live) == 0:
            return time.monotonic() - started
        await asyncio.sleep(0.01)
    raise AssertionError(f"upstream still open: inflight={live.inflight()}")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
async def test_a_departed_client_cancels_upstream(start_gateway: StartGateway, method: str, stream: bool) -> None:
    live = await start_gateway(method, grok={"idle_timeout": 10.0, "timeout": 30.0})
    live.fake.frame_delay = 0.1  # the answer takes seconds: it is still running when the client leaves
    body = {**ASK, "n": 2, "stream": stream}
    endpoint = "chat" if method == "legacy" else "imagine"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        request = asyncio.ensure_future(http.post(f"{live.url}/v1/images/generations", json=body))
        if stream:
            response = await request
            assert response.status == 200
            await response.content.readline()  # the first event arrived
            response.close()
        else:
            while not live.fake.requests_to(endpoint) or set(live.inflight().values()) == {0}:
                await asyncio.sleep(0.01)
            request.cancel()
            with pytest.raises(asyncio.CancelledError):
                await request
    assert await settled(live, endpoint) < 1.5  # the watch looks every 0.1 s; a loaded machine is slower


async def test_a_socket_closed_before_any_picture_is_502(start_gateway: StartGateway) -> None:
    live = await start_gateway("imagine_ws_experimental")
    live.fake.inject("imagine_drop", after_lines=3)
    with pytest.raises(openai.InternalServerError) as caught:
        await live.aclient().images.generate(**ASK, n=4)
    assert (caught.value.status_code, caught.value.code) == (502, "upstream_error")


async def test_a_socket_closed_mid_round_gives_the_pictures_it_finished(start_gateway: StartGateway) -> None:
    live = await start_gateway("imagine_ws_experimental")
    live.fake.inject("imagine_drop", after_lines=10)  # each slot is five frames: two slots finished
    answer = await live.aclient().images.generate(**ASK, n=4, response_format="b64_json")
    assert len(answer.data) == 2
