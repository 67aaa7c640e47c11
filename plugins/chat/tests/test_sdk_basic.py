"""The real openai SDK against the gateway: every model, both clients, streaming and not."""

from __future__ import annotations

import asyncio

import httpx2 as httpx
import pytest
from openai.types.chat import ChatCompletion

from grok2api.testing.openai_schema import validate
from grok2api_plugins.chat.catalog import CHAT_MODELS

from .conftest import StartGateway
from .support import API_KEY, content_of, usage_of

THINKING = {"grok-3-mini", "grok-3-thinking", "grok-4-mini", "grok-4-thinking", "grok-4-heavy",
            "grok-4.1-mini", "grok-4.1-expert", "grok-4.1-thinking"}


async def test_every_model_answers_with_the_sync_client(start_gateway: StartGateway) -> None:
    live = await start_gateway(basic=["basic-1"], super_=["super-1"])
    client = live.client()

    def ask(model: str) -> ChatCompletion:
        return client.chat.completions.create(model=model, messages=[
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": f"Say hello as {model}"}])

    for spec in CHAT_MODELS:
        answer = await asyncio.to_thread(ask, spec.id)
        expected = f"Echo: Say hello as {spec.id}"
        assert content_of(answer).startswith(expected), (spec.id, content_of(answer))
        reasoning = getattr(answer.choices[0].message, "reasoning_content", None)
        assert bool(reasoning) == (spec.id in THINKING), (spec.id, reasoning)
        assert answer.model == spec.id and answer.choices[0].finish_reason == "stop"
        usage = usage_of(answer)
        assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    sent = [(r.json["modelName"], r.json["modelMode"], r.sso) for r in live.chats()]
    assert sent == [(s.upstream_model, s.upstream_mode, "super-1" if s.heavy else sent[i][2])
                    for i, s in enumerate(CHAT_MODELS)]
    assert all(r.json["message"].startswith("system: Be terse.\n\nSay hello as") for r in live.chats())
    assert {path for path, _, _ in live.bodies.seen} == {"/v1/chat/completions"}


async def test_streaming_with_the_async_client(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    client = live.aclient()
    stream = await client.chat.completions.create(
        model="grok-4.1-thinking", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "Latest Python?"}])
    chunks = [chunk async for chunk in stream]
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    assert content == "Echo: Latest Python? [[1]](https://search.example/?q=Latest%20Python%3F)."
    assert "I should search the web." in reasoning and "- [About Latest Python?]" in reasoning
    assert "tool_usage_card" not in content + reasoning and "grok:render" not in content
    finals = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finals[-1] == "stop" and finals.count("stop") == 1
    details = usage_of(chunks[-1]).completion_tokens_details
    assert chunks[-1].choices == [] and details is not None and (details.reasoning_tokens or 0) > 0
    assert [s for _, _, s in live.bodies.seen][0][-1] == "CreateChatCompletionStreamResponse"


async def test_omitting_stream_gives_json_and_models_validate(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    async with httpx.AsyncClient(base_url=live.url, headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        answer = await http.post("/v1/chat/completions",
                                 json={"model": "grok-4", "messages": [{"role": "user", "content": "hi"}]})
        assert answer.headers["content-type"].startswith("application/json")
        validate("CreateChatCompletionResponse", answer.json())
        models = await http.get("/v1/models")
        validate("ListModelsResponse", models.json())
        assert {m["id"] for m in models.json()["data"]} >= {s.id for s in CHAT_MODELS}
        bad = await http.post("/v1/chat/completions", json={"model": "grok-4", "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "gopher://x"}}]}]})
        assert bad.status_code == 400
        validate("ErrorResponse", bad.json())
        assert bad.json()["error"]["param"] == "messages[0].content[0].image_url.url"
    assert not live.chats()[1:]


@pytest.mark.parametrize("think", ["disabled", "none"])
async def test_reasoning_can_be_turned_off(start_gateway: StartGateway, think: str) -> None:
    live = await start_gateway()
    extra = {"thinking": "disabled"} if think == "disabled" else {"reasoning_effort": "none"}
    answer = await live.aclient().chat.completions.create(
        model="grok-4.1-thinking", messages=[{"role": "user", "content": "quiet"}], extra_body=extra)
    assert getattr(answer.choices[0].message, "reasoning_content", None) is None
    assert content_of(answer).startswith("Echo: quiet")
    details = usage_of(answer).completion_tokens_details
    assert details is not None and details.reasoning_tokens == 0


async def test_reasoning_in_think_tags_when_configured(start_gateway: StartGateway) -> None:
    live = await start_gateway(chat={"reasoning_format": "think_tags"})
    client = live.aclient()
    answer = await client.chat.completions.create(
        model="grok-4.1-thinking", messages=[{"role": "user", "content": "tags"}])
    content = content_of(answer)
    assert content.startswith("<think>\n") and "</think>\n\nEcho: tags" in content
    stream = await client.chat.completions.create(
        model="grok-4.1-thinking", messages=[{"role": "user", "content": "tags"}], stream=True)
    streamed = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert streamed.split("</think>")[1] == content.split("</think>")[1]
