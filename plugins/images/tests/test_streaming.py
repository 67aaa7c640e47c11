"""Streamed generations and edits: partial images from Grok's real progress, then the
finished pictures, and an ``error`` event when Grok fails after the stream began."""

from __future__ import annotations

import asyncio
import base64
import io

import openai
import pytest

from .conftest import StartGateway
from .support import is_picture

METHODS = ["legacy", "imagine_ws_experimental"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("n", "fmt"), [(1, "b64_json"), (2, "url")])
async def test_partials_then_completed(start_gateway: StartGateway, method: str, n: int, fmt: str) -> None:
    live = await start_gateway(method)
    stream = await live.aclient().images.generate(model="grok-imagine-1.0", prompt="a fox", n=n, stream=True,
                                                  response_format=fmt)
    events = [event async for event in stream]
    completed = [e for e in events if e.type == "image_generation.completed"]
    partials = [e for e in events if e.type == "image_generation.partial_image"]
    assert len(completed) == n and {e.model_extra["index"] for e in completed} == set(range(n))
    for index in range(n):
        mine = [e for e in partials if e.model_extra["index"] == index]
        assert [e.partial_image_index for e in mine] == list(range(len(mine))) and mine
        progress = [e.model_extra["progress"] for e in mine]
        assert progress == sorted(progress) and all(0 <= p < 100 for p in progress)
        finished = events.index(next(e for e in completed if e.model_extra["index"] == index))
        assert all(events.index(e) < finished for e in mine)
        if method == "imagine_ws_experimental":  # the socket's previews are real pictures
            assert all(is_picture(base64.b64decode(e.b64_json)) for e in mine)
    for event in completed:
        if fmt == "url":
            assert event.b64_json == "" and event.model_extra["url"].startswith(f"{live.url}/v1/files/image/")
        else:
            assert is_picture(base64.b64decode(event.b64_json))
    assert set(live.inflight().values()) == {0}


async def test_a_sync_streamed_edit(start_gateway: StartGateway, fake_jpeg: bytes) -> None:
    live = await start_gateway()

    def edit() -> list[str]:
        stream = live.client().images.edit(model="grok-imagine-1.0-edit", prompt="make it blue", stream=True,
                                           image=("cat.jpg", io.BytesIO(fake_jpeg), "image/jpeg"))
        return [event.type for event in stream]

    types = await asyncio.to_thread(edit)
    assert types[-1] == "image_edit.completed" and set(types) == {"image_edit.partial_image", "image_edit.completed"}


@pytest.mark.parametrize("method", METHODS)
async def test_a_failure_after_the_first_event_ends_with_an_error(start_gateway: StartGateway, method: str) -> None:
    live = await start_gateway(method)
    if method == "legacy":  # Grok's usage limit after the first progress frames
        live.fake.inject("usage_limit", endpoint="chat", after_lines=11)
    else:
        live.fake.inject("imagine_error_mid", after_lines=3)
    stream = await live.aclient().images.generate(model="grok-imagine-1.0", prompt="a fox", n=1, stream=True)
    seen = []
    with pytest.raises(openai.APIError) as caught:
        async for event in stream:
            seen.append(event.type)
    assert seen and "completed" not in " ".join(seen)
    assert caught.value.code in ("rate_limit_exceeded", "upstream_error")
    assert set(live.inflight().values()) == {0}


async def test_a_failure_before_the_first_event_is_a_status(start_gateway: StartGateway) -> None:
    live = await start_gateway("imagine_ws_experimental")
    live.fake.inject("rate_limited", endpoint="imagine", times=None, retry_after=30)
    with pytest.raises(openai.RateLimitError) as caught:
        await live.aclient().images.generate(model="grok-imagine-1.0", prompt="a fox", stream=True)
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.response.headers["retry-after"] == "30"
