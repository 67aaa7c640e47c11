"""``WS /api/v1/admin/imagine/ws``: continuous generation through aiohttp's WebSocket client,
against the fake Grok's imagine socket, with the API key's daily image limit enforced."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from grok2api.api import KEYS

from .conftest import StartGateway
from .support import API_KEY, Live, is_picture, key_usage

PATH = "/api/v1/admin/imagine/ws"


@asynccontextmanager
async def socket(live: Live, key: str = API_KEY) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with aiohttp.ClientSession() as http, http.ws_connect(f"{live.url}{PATH}", params={"api_key": key}) as ws:
        yield ws


async def until(ws: aiohttp.ClientWebSocketResponse, wanted: str, status: str | None = None) -> list[dict[str, Any]]:
    """Every event up to and including the first of type ``wanted`` (with ``status``)."""
    seen = []
    async with asyncio.timeout(30):  # a guard against a hang, not a measure of speed
        while True:
            event = await ws.receive_json()
            seen.append(event)
            if event["type"] == wanted and (status is None or event.get("status") == status):
                return seen


def images(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == "image"]


async def test_a_run_streams_batches_of_pictures_until_stopped(start_gateway: StartGateway) -> None:
    live = await start_gateway("legacy")  # the socket always uses the imagine method
    async with socket(live) as ws:
        await ws.send_json({"type": "start", "prompt": "a lighthouse at dusk", "aspect_ratio": "16:9"})
        running = await ws.receive_json()
        assert running["type"] == "status" and running["status"] == "running"
        assert running["prompt"] == "a lighthouse at dusk" and running["aspect_ratio"] == "16:9"
        seen: list[dict[str, Any]] = []
        while len(images(seen)) < 7:  # more than one batch
            seen += await until(ws, "image")
        await ws.send_json({"type": "stop"})
        seen += await until(ws, "status", "stopped")
    pictures = images(seen)
    assert [p["sequence"] for p in pictures] == list(range(1, len(pictures) + 1))
    for picture in pictures:
        assert is_picture(base64.b64decode(picture["b64_json"]))
        assert picture["run_id"] == running["run_id"] and picture["aspect_ratio"] == "16:9"
        assert picture["created_at"] > 1_700_000_000_000 and picture["elapsed_ms"] >= 0
    assert seen[-1] == {"type": "status", "status": "stopped", "run_id": running["run_id"]}
    rounds = live.fake.requests_to("imagine")
    assert len(rounds) >= 2 and not live.fake.requests_to("chat")
    assert {r.ws_messages[0]["item"]["content"][0]["properties"]["aspect_ratio"] for r in rounds} == {"16:9"}
    # every picture sent is charged, and nothing else
    await _settled(live)
    assert await key_usage(live) == len(pictures)


async def _settled(live: Live) -> None:
    """Wait until the stopped loop's accounts are back (its cancellation runs after the event)."""
    async with asyncio.timeout(10):
        while any(live.inflight().values()):
            await asyncio.sleep(0.02)


async def test_the_daily_image_limit_ends_the_loop(start_gateway: StartGateway) -> None:
    live = await start_gateway(limits={"image_limit": 8})
    async with socket(live) as ws:
        await ws.send_json({"type": "start", "prompt": "a quota of foxes"})
        seen = await until(ws, "status", "stopped")
    assert len(images(seen)) == 8  # a batch of 6, then the 2 left of the limit
    error = [e for e in seen if e["type"] == "error"]
    assert len(error) == 1 and error[0]["code"] == "rate_limit_exceeded" and "daily image limit" in error[0]["message"]
    assert seen[-2] == error[0]
    assert await key_usage(live) == 8
    assert len(live.fake.requests_to("imagine")) == 3  # rounds of 4 and 2, then one for the last 2


async def test_a_blocked_key_makes_nothing(start_gateway: StartGateway) -> None:
    live = await start_gateway(limits={"image_limit": 0})
    async with socket(live) as ws:
        await ws.send_json({"type": "start", "prompt": "anything"})
        seen = await until(ws, "status", "stopped")
    assert [e["type"] for e in seen] == ["status", "error", "status"] and seen[1]["code"] == "rate_limit_exceeded"
    assert not live.fake.requests_to("imagine")


async def test_commands_that_cannot_run_get_an_error_and_the_socket_stays(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    async with socket(live) as ws:
        await ws.send_json({"type": "ping"})
        assert await ws.receive_json() == {"type": "pong"}
        for sent, code in [("not json", "invalid_payload"), ("[1, 2]", "invalid_payload"),
                           ('{"type": "dance"}', "unknown_command"), ('{"type": "start", "prompt": "  "}',
                                                                      "empty_prompt")]:
            await ws.send_str(sent)
            event = await ws.receive_json()
            assert event["type"] == "error" and event["code"] == code, (sent, event)
        await ws.send_bytes(b"\x00\x01")
        assert (await ws.receive_json())["code"] == "invalid_payload"
        await ws.send_json({"type": "ping"})
        assert await ws.receive_json() == {"type": "pong"}
    assert not live.fake.requests_to("imagine")


async def test_a_start_replaces_the_running_loop(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    async with socket(live) as ws:
        await ws.send_json({"type": "start", "prompt": "first"})
        first = await ws.receive_json()
        await ws.send_json({"type": "start", "prompt": "second", "aspect_ratio": "1024x1024"})
        seen = await until(ws, "status", "running")
        assert {"type": "status", "status": "stopped", "run_id": first["run_id"]} in seen
        second = seen[-1]
        assert second["run_id"] != first["run_id"] and second["aspect_ratio"] == "1:1"
        pictures = images(await until(ws, "image"))
        assert pictures[-1]["run_id"] == second["run_id"]


async def test_a_wrong_key_is_closed_with_1008(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    async with socket(live, key="sk-wrong") as ws:
        message = await ws.receive()
    assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 1008
    async with aiohttp.ClientSession() as http:
        plain = await http.get(f"{live.url}{PATH}", params={"api_key": API_KEY})
        assert plain.status == 400 and (await plain.json())["error"]["code"] == "websocket_required"


async def test_leaving_mid_batch_frees_the_account(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    live.fake.frame_delay = 0.05  # a round takes about a second: it is still running when the client leaves
    async with socket(live) as ws:
        await ws.send_json({"type": "start", "prompt": "leave early"})
        await until(ws, "image")
    await _settled(live)
    assert live.fake.requests_to("imagine")[-1].disconnected


@pytest.mark.parametrize("marker", ["[moderate]"])
async def test_a_refused_prompt_is_an_error_and_the_loop_goes_on(start_gateway: StartGateway, marker: str) -> None:
    live = await start_gateway()
    async with socket(live) as ws:
        await ws.send_json({"type": "start", "prompt": f"{marker} something"})
        seen = await until(ws, "error")
        assert seen[-1]["code"] == "content_policy_violation"
        await ws.send_json({"type": "stop"})
        await until(ws, "status", "stopped")
    await _settled(live)
    assert await key_usage(live) == 0


async def test_each_batch_is_a_request_of_the_keys_rpm(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    await live.app[KEYS].update(API_KEY, access={"rpm": 1})
    async with socket(live) as ws:
        await ws.send_json({"type": "start", "prompt": "one a minute"})
        seen = await until(ws, "error")
        assert seen[-1]["code"] == "rate_limit_exceeded" and "1 requests per minute" in seen[-1]["message"]
        assert len(images(seen)) == 6  # the first batch, then the loop waits for the next minute
        await ws.send_json({"type": "stop"})
        await until(ws, "status", "stopped")
    assert len(live.fake.requests_to("imagine")) == 2


async def test_a_model_the_key_may_not_use_ends_the_loop(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    await live.app[KEYS].update(API_KEY, access={"models": ["grok-4"]})
    async with socket(live) as ws:
        await ws.send_json({"type": "start", "prompt": "not for this key"})
        seen = await until(ws, "status", "stopped")
    assert [e["type"] for e in seen] == ["status", "error", "status"] and seen[1]["code"] == "model_not_allowed"
    assert not live.fake.requests_to("imagine")


@pytest.mark.parametrize(("change", "code"), [({"is_active": False}, "invalid_api_key"),
                                              ({"access": {"expires_at": 1_000_000_000}}, "key_expired")],
                         ids=["disabled", "expired"])
async def test_a_key_disabled_or_expired_mid_run_ends_the_loop(start_gateway: StartGateway, change: dict[str, Any],
                                                               code: str) -> None:
    live = await start_gateway()
    async with socket(live) as ws:
        await ws.send_json({"type": "start", "prompt": "until the key goes"})
        await until(ws, "image")
        await live.app[KEYS].update(API_KEY, **change)
        seen = await until(ws, "status", "stopped")
    errors = [e for e in seen if e["type"] == "error"]
    assert [e["code"] for e in errors] == [code]
    async with socket(live) as ws:  # and it cannot open another socket
        message = await ws.receive()
    assert message.type is aiohttp.WSMsgType.CLOSE and message.data == 1008
