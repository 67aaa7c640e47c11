"""Anthropic's Messages API with the official ``anthropic`` SDK against the fake Grok:
text, streams, tools (a full loop), thinking, token counting, errors in Anthropic's shape."""

from __future__ import annotations

import base64
from typing import Any, cast

import anthropic
import httpx2 as httpx
import pytest
from anthropic.types import ContentBlockParam, Message, MessageParam, TextBlock, ThinkingBlock, ToolParam

from grok2api_plugins.chat.tests.conftest import StartGateway
from grok2api_plugins.chat.tests.support import API_KEY, Live

WEATHER: ToolParam = {"name": "get_weather", "description": "Current weather of a city",
                      "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                                       "required": ["city"]}}
ASK: list[MessageParam] = [{"role": "user", "content": "Weather in Oslo?"}]


async def gateway(start_gateway: StartGateway, **options: Any) -> Live:
    return await start_gateway(plugins=("messages",), **options)


def client(live: Live, **options: Any) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=live.url, api_key=API_KEY, max_retries=0, timeout=20, **options)


def prompt_of(live: Live) -> str:
    """The prompt the gateway sent Grok last."""
    prompt = live.chats()[-1].json["message"]
    assert isinstance(prompt, str), prompt
    return prompt


def text_of(message: Message) -> str:
    """The text of a message's first block (a test fails on another kind of block)."""
    block = message.content[0]
    assert isinstance(block, TextBlock), block
    return block.text


def thinking_of(message: Message) -> ThinkingBlock:
    """A message's first block, which a test expects to be its thinking."""
    block = message.content[0]
    assert isinstance(block, ThinkingBlock), block
    return block


def error_of(failure: anthropic.APIStatusError) -> dict[str, Any]:
    """The error object of a refused request, as the SDK read it."""
    assert isinstance(failure.body, dict), failure.body
    error = failure.body["error"]
    assert isinstance(error, dict), failure.body
    return error


async def test_text_with_system_prompts_in_every_form(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    message = await client(live).messages.create(
        model="grok-3", max_tokens=256, system=[{"type": "text", "text": "Be brief."}],
        messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."},
                  {"role": "system", "content": "Answer in English."},  # inline, as coding agents send it
                  {"role": "user", "content": [{"type": "text", "text": "Tell me about tides"}]}])
    assert message.type == "message" and message.role == "assistant" and message.model == "grok-3"
    assert [b.type for b in message.content] == ["text"]
    assert text_of(message) == "Echo: Tell me about tides"
    assert message.stop_reason == "end_turn" and message.id.startswith("msg_")
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert prompt_of(live) == ("system: Be brief.\n\nuser: Hi\n\nassistant: Hello.\n\n"
                               "system: Answer in English.\n\nTell me about tides")


async def test_a_stream_and_its_event_sequence(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    async with client(live).messages.stream(model="grok-3", max_tokens=64, messages=ASK) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert kinds[1] == "content_block_start" and "content_block_stop" in kinds and "message_delta" in kinds
    assert text_of(final) == "Echo: Weather in Oslo?"
    assert final.stop_reason == "end_turn" and final.usage.input_tokens > 0


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_a_full_tool_loop(start_gateway: StartGateway, stream: bool) -> None:
    live = await gateway(start_gateway)
    api = client(live)

    async def ask(messages: list[MessageParam]) -> Message:
        if not stream:
            return await api.messages.create(model="grok-3", max_tokens=256, messages=messages, tools=[WEATHER])
        async with api.messages.stream(model="grok-3", max_tokens=256, messages=messages,
                                       tools=[WEATHER]) as events:
            return await events.get_final_message()

    first = await ask(ASK)
    assert first.stop_reason == "tool_use"
    assert [b.type for b in first.content] == ["text", "tool_use"]
    use = first.content[1]
    assert use.type == "tool_use" and use.name == "get_weather" and use.input == {"city": "Weather in Oslo?"}
    echoed = cast("list[ContentBlockParam]", [b.model_dump() for b in first.content])  # the blocks as JSON
    history: list[MessageParam] = [
        *ASK, {"role": "assistant", "content": echoed},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "-3 C, snow"}]}]
    final = await ask(history)
    assert final.stop_reason == "end_turn" and text_of(final) == "Echo: -3 C, snow"
    assert f'<tool_result call_id="{use.id}" name="get_weather">\n-3 C, snow\n</tool_result>' in prompt_of(live)


async def test_tool_choice_and_one_call_only(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    clock: ToolParam = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
    message = await client(live).messages.create(
        model="grok-3", max_tokens=256, tools=[WEATHER, clock],
        messages=[{"role": "user", "content": "Both please [parallel]"}],
        tool_choice={"type": "any", "disable_parallel_tool_use": True})
    assert [b.name for b in message.content if b.type == "tool_use"] == ["get_weather"]
    assert "You must call at least one of the tools" in prompt_of(live) and "at most one tool" in prompt_of(live)
    forced = await client(live).messages.create(model="grok-3", max_tokens=256, tools=[WEATHER, clock], messages=ASK,
                                                tool_choice={"type": "tool", "name": "get_time"})
    assert [b.name for b in forced.content if b.type == "tool_use"] == ["get_time"]


async def test_malformed_tool_output_is_text(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    message = await client(live).messages.create(model="grok-3", max_tokens=256, tools=[WEATHER],
                                                 messages=[{"role": "user", "content": "Oslo [malformed-tool]"}])
    assert message.stop_reason == "end_turn" and [b.type for b in message.content] == ["text"]
    assert "<tool_call>" in text_of(message)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_thinking_blocks(start_gateway: StartGateway, stream: bool) -> None:
    live = await gateway(start_gateway)
    api = client(live)
    options: dict[str, Any] = {"model": "grok-4-thinking", "max_tokens": 2048, "messages": ASK,
                               "thinking": {"type": "enabled", "budget_tokens": 1024}}
    if stream:
        async with api.messages.stream(**options) as events:
            message = await events.get_final_message()
    else:
        message = await api.messages.create(**options)
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert "Thinking about your request" in thinking_of(message).thinking
    assert thinking_of(message).signature
    plain = await api.messages.create(**{**options, "thinking": {"type": "disabled"}})
    assert [b.type for b in plain.content] == ["text"]


async def test_thinking_then_a_tool_call_in_one_stream(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    async with client(live).messages.stream(model="grok-4.1-thinking", max_tokens=2048, messages=ASK, tools=[WEATHER],
                                            thinking={"type": "adaptive"}) as stream:
        starts = [e.content_block.type async for e in stream if e.type == "content_block_start"]
        message = await stream.get_final_message()
    assert starts == ["thinking", "text", "tool_use"] == [b.type for b in message.content]
    assert message.stop_reason == "tool_use" and "Choosing a tool" in thinking_of(message).thinking


async def test_max_tokens_stops_the_answer(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    long: list[MessageParam] = [{"role": "user", "content": "Tell me " + " ".join(f"word{i}" for i in range(40))}]
    message = await client(live).messages.create(model="grok-3", max_tokens=6, messages=long)
    assert message.stop_reason == "max_tokens" and "word39" not in text_of(message)
    async with client(live).messages.stream(model="grok-3", max_tokens=6, messages=long) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "max_tokens"


async def test_count_tokens_matches_usage(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    api = client(live)
    body: dict[str, Any] = {"model": "grok-3", "system": "Be brief.", "messages": ASK, "tools": [WEATHER]}
    counted = await api.messages.count_tokens(**body)
    used = await api.messages.create(max_tokens=100, **body)
    assert counted.input_tokens == used.usage.input_tokens > 0
    assert len(live.chats()) == 1  # counting never goes upstream


async def test_an_image_block_is_uploaded(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x01" * 32).decode()
    message = await client(live).messages.create(model="grok-3", max_tokens=64, messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}},
        {"type": "text", "text": "What is this?"}]}])
    assert text_of(message) == "Echo: What is this?"
    (upload,) = live.fake.requests_to("upload")
    assert (upload.json["fileMimeType"], upload.json["content"]) == ("image/png", png)
    assert len(live.chats()[-1].json["fileAttachments"]) == 1


async def test_errors_in_anthropics_shape(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    with pytest.raises(anthropic.AuthenticationError) as denied:
        await anthropic.AsyncAnthropic(base_url=live.url, api_key="sk-wrong", max_retries=0).messages.create(
            model="grok-3", max_tokens=10, messages=ASK)
    assert denied.value.body == {"type": "error", "error": {"type": "authentication_error",
                                                            "message": "Invalid API key"}}
    with pytest.raises(anthropic.NotFoundError) as missing:
        await client(live).messages.create(model="claude-none", max_tokens=10, messages=ASK)
    assert error_of(missing.value)["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError) as bad:
        robot = cast("MessageParam", {"role": "robot", "content": "x"})  # a role no SDK type allows, on purpose
        await client(live).messages.create(model="grok-3", max_tokens=10, messages=[robot])
    assert error_of(bad.value)["type"] == "invalid_request_error"
    assert "messages.0.role" in error_of(bad.value)["message"]
    async with httpx.AsyncClient() as raw:
        no_max = await raw.post(live.url + "/v1/messages", headers={"x-api-key": API_KEY},
                                json={"model": "grok-3", "messages": ASK})
        assert no_max.status_code == 400 and no_max.json()["error"]["message"].startswith("max_tokens")
        by_header = await raw.post(live.url + "/v1/messages", headers={"x-api-key": API_KEY},
                                   json={"model": "grok-3", "max_tokens": 100, "messages": ASK})
        assert by_header.status_code == 200 and by_header.json()["content"][0]["text"] == "Echo: Weather in Oslo?"
        models = await raw.get(live.url + "/v1/models", headers={"x-api-key": API_KEY})  # on every /v1 route
        assert models.status_code == 200
        anonymous = await raw.post(live.url + "/v1/messages", json={"model": "grok-3", "messages": ASK})
        assert anonymous.status_code == 401 and anonymous.json()["error"]["type"] == "authentication_error"
    live.fake.inject("rate_limited", endpoint="chat", retry_after=30)
    with pytest.raises(anthropic.RateLimitError) as limited:
        await client(live).messages.create(model="grok-3", max_tokens=10, messages=ASK)
    assert error_of(limited.value)["type"] == "rate_limit_error"
    assert limited.value.response.headers["retry-after"] == "30"


async def test_an_upstream_failure_mid_stream_is_an_error_event(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway, grok={"first_byte_timeout": 0.4, "idle_timeout": 0.4})
    live.fake.inject("drop", endpoint="chat", after_lines=5)
    seen = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with client(live).messages.stream(model="grok-3", max_tokens=64, messages=ASK) as stream:
            async for event in stream:
                seen.append(event.type)
    assert seen[0] == "message_start" and "message_stop" not in seen
    assert error_of(caught.value)["type"] == "api_error"
    assert set(live.inflight().values()) == {0}
