"""``POST /v1/images/generations`` through the openai SDK, with both methods against the fake Grok."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest

from grok2api_plugins.images.request import ASPECT_RATIOS

from .conftest import StartGateway
from .support import is_picture, picture_bytes

METHODS = ["legacy", "imagine_ws_experimental"]
#: n and the response format asked with it: every n of the brief, every format for each method
ASKS = [(1, "url"), (2, "base64"), (3, "b64_json"), (4, "url"), (10, "b64_json")]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("n", "fmt"), ASKS, ids=[f"n{n}-{fmt}" for n, fmt in ASKS])
async def test_n_pictures_in_each_format(start_gateway: StartGateway, method: str, n: int, fmt: str) -> None:
    live = await start_gateway(method)
    ask = {"model": "grok-imagine-1.0", "prompt": "a red fox in snow", "n": n, "response_format": fmt}
    if n % 2:  # the sync client too
        answer = await asyncio.to_thread(live.client().images.generate, **ask)
    else:
        answer = await live.aclient().images.generate(**ask)
    assert len(answer.data) == n and answer.usage is None and answer.created > 0
    for item in answer.data:
        assert (item.url is not None) == (fmt == "url")
        if fmt == "url":
            assert item.url.startswith(f"{live.url}/v1/files/image/")
        if fmt == "base64":
            assert item.b64_json is None and "base64" in (item.model_extra or {})
    pictures = [await picture_bytes(item) for item in answer.data]
    assert all(is_picture(p) for p in pictures) and len(set(pictures)) == n
    stored = {asset.data for asset in live.fake.assets.values()}
    assert set(pictures) <= stored  # Grok's own pictures, not placeholders
    if method == "legacy":
        chats = live.fake.requests_to("chat")
        assert len(chats) == -(-n // 2)
        assert {c.json["message"] for c in chats} == {"Image Generation: a red fox in snow"}
        assert {(c.json["modelName"], c.json["modelMode"]) for c in chats} == {("grok-3", "MODEL_MODE_FAST")}
    else:
        assert len(live.fake.requests_to("imagine")) == -(-n // 4)
    assert set(live.inflight().values()) == {0}


async def test_every_size_of_the_table(start_gateway: StartGateway) -> None:
    live = await start_gateway("imagine_ws_experimental", basic=["basic-1", "basic-2"],
                               token={"max_inflight_per_account": 32})  # 80 units each, 4 a picture
    client = live.aclient()
    sizes = [*ASPECT_RATIOS, " 16:9 ", "1024X1024", "300x200", "auto"]
    await asyncio.gather(*(client.images.generate(model="grok-imagine-1.0", prompt=f"size {i}", size=size)
                           for i, size in enumerate(sizes)))
    sent = {}
    for socket in live.fake.requests_to("imagine"):
        (content,) = socket.ws_messages[0]["item"]["content"]
        sent[sizes[int(content["text"].removeprefix("size "))]] = content["properties"]["aspect_ratio"]
    expected = {**ASPECT_RATIOS, " 16:9 ": "16:9", "1024X1024": "1:1", "300x200": "2:3", "auto": "2:3"}
    assert sent == expected
    assert set(ASPECT_RATIOS.values()) == {"1:1", "16:9", "9:16", "2:3", "3:2"}


async def test_concurrency_bounds_the_sockets(start_gateway: StartGateway) -> None:
    live = await start_gateway("imagine_ws_experimental")
    live.fake.frame_delay = 0.01
    ask = {"model": "grok-imagine-1.0", "prompt": "many", "n": 10, "response_format": "url"}
    assert len((await live.aclient().images.generate(**ask, extra_body={"concurrency": 1})).data) == 10
    serial = len(live.fake.requests_to("imagine"))
    assert len((await live.aclient().images.generate(**ask, extra_body={"concurrency": 3})).data) == 10
    assert serial == 3 and len(live.fake.requests_to("imagine")) == 6


@pytest.mark.parametrize(("configured", "reported"), [("legacy", "legacy"), ("imagine_ws", "imagine_ws_experimental"),
                                                      ("NEW", "imagine_ws_experimental")])
async def test_the_method_endpoint(start_gateway: StartGateway, configured: str, reported: str) -> None:
    live = await start_gateway(configured)
    answer = await live.aclient().get("/images/method", cast_to=object)
    assert answer == {"image_generation_method": reported}
    with pytest.raises(openai.AuthenticationError):
        await live.aclient(api_key="sk-wrong").get("/images/method", cast_to=object)


async def test_refusals_name_the_field(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    client = live.aclient()
    base = {"model": "grok-imagine-1.0", "prompt": "a fox"}
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"prompt": "  "}, "prompt", "empty_prompt"), ({"n": 0}, "n", "invalid_value"),
        ({"n": 11}, "n", "invalid_value"), ({"n": 3, "stream": True}, "n", "invalid_stream_n"),
        ({"response_format": "gif"}, "response_format", "invalid_response_format"),
        ({"extra_body": {"concurrency": 4}}, "concurrency", "invalid_value"),
        ({"extra_body": {"n": "two"}}, "n", "invalid_type"),
        ({"extra_body": {"response_format": 1}}, "response_format", "invalid_type"),
        ({"model": "grok-imagine-1.0-edit"}, "model", "model_not_supported"),
    ]
    for change, param, code in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.images.generate(**{**base, **change})
        assert (caught.value.param, caught.value.code) == (param, code), change
    assert live.fake.requests_to("chat") == []


async def test_unknown_fields_are_ignored(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    answer = await live.aclient().images.generate(
        model="grok-imagine-1.0", prompt="a fox", quality="high", style="vivid", user="me",
        extra_body={"whatever": {"deep": 1}})
    assert len(answer.data) == 1
