"""Tool calling through ``/v1/chat/completions`` with the openai SDK: the fake Grok answers
the gateway's tool prompt by the convention, so every case is a real round trip."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest
from openai import AsyncStream
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam, ChatCompletionToolParam
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from grok2api_plugins.chat.usage import count_tokens

from .conftest import StartGateway
from .support import Live, content_of, error_of, tool_calls_of

WEATHER: ChatCompletionToolParam = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
                   "required": ["city", "unit"], "additionalProperties": False}}}
CLOCK: ChatCompletionToolParam = {"type": "function", "function": {
    "name": "get_time", "parameters": {"type": "object", "properties": {}}}}
ASK: list[ChatCompletionMessageParam] = [{"role": "system", "content": "Be brief."},
                                         {"role": "user", "content": "Weather in Lima?"}]


def sent_prompt(live: Live) -> str:
    """The prompt the gateway sent Grok last."""
    prompt = live.chats()[-1].json["message"]
    assert isinstance(prompt, str), prompt
    return prompt


async def collect(stream: AsyncStream[ChatCompletionChunk]) -> tuple[str, dict[int, dict[str, str]], list[str | None]]:
    """Content, the tool calls assembled from their deltas (by index), and every finish_reason."""
    content = ""
    calls: dict[int, dict[str, str]] = {}
    finishes: list[str | None] = []
    async for chunk in stream:
        if not chunk.choices:
            continue
        choice = chunk.choices[0]
        finishes.append(choice.finish_reason)
        content += choice.delta.content or ""
        for delta in choice.delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            call["name"] += (delta.function.name or "") if delta.function else ""
            call["arguments"] += (delta.function.arguments or "") if delta.function else ""
    return content, calls, finishes


async def test_a_call_without_streaming(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    answer = await live.aclient().chat.completions.create(model="grok-3", messages=ASK, tools=[WEATHER, CLOCK])
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me use a tool for Weather in Lima?."
    (call,) = tool_calls_of(answer)
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    assert orjson.loads(call.function.arguments) == {"city": "Weather in Lima?", "unit": "C"}
    prompt = sent_prompt(live)
    assert prompt.startswith("You can call tools.") and '"name":"get_time"' in prompt
    assert prompt.endswith("system: Be brief.\n\nWeather in Lima?")
    assert answer.usage is not None and answer.usage.completion_tokens == (
        count_tokens(content_of(answer)) + count_tokens(call.function.name) + count_tokens(call.function.arguments))


async def test_a_streamed_call_and_the_full_loop(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    client = live.aclient()
    stream = await client.chat.completions.create(model="grok-3", messages=ASK, tools=[WEATHER], stream=True,
                                                  stream_options={"include_usage": True})
    content, calls, finishes = await collect(stream)
    assert content.startswith("Let me use a tool") and "<tool_call>" not in content
    assert finishes[-1] == "tool_calls" and set(finishes[:-1]) == {None}
    call = calls[0]
    assert call["name"] == "get_weather" and orjson.loads(call["arguments"])["unit"] == "C"

    history: list[ChatCompletionMessageParam] = [*ASK,
               {"role": "assistant", "content": content, "tool_calls": [
                   {"id": call["id"], "type": "function",
                    "function": {"name": call["name"], "arguments": call["arguments"]}}]},
               {"role": "tool", "tool_call_id": call["id"], "content": "18 C and cloudy"}]
    final = await client.chat.completions.create(model="grok-3", messages=history, tools=[WEATHER])
    assert final.choices[0].finish_reason == "stop" and final.choices[0].message.tool_calls is None
    assert final.choices[0].message.content == "Echo: 18 C and cloudy"
    prompt = sent_prompt(live)
    assert f'<tool_result call_id="{call["id"]}" name="get_weather">\n18 C and cloudy\n</tool_result>' in prompt
    assert '<tool_call>{"name":"get_weather","arguments":{"city":' in prompt  # the earlier call, by the convention


async def test_reasoning_then_a_call(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    stream = await live.aclient().chat.completions.create(model="grok-4.1-thinking", messages=ASK, tools=[WEATHER],
                                                          stream=True)
    reasoning = ""
    calls: list[ChoiceDeltaToolCall] = []
    async for chunk in stream:
        delta = chunk.choices[0].delta
        reasoning += getattr(delta, "reasoning_content", None) or ""
        calls += delta.tool_calls or []
    function = calls[0].function
    assert "Choosing a tool" in reasoning and function is not None and function.name == "get_weather"


async def test_parallel_calls_and_the_switch_that_forbids_them(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    client = live.aclient()
    ask: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather and time [parallel]"}]
    both = await client.chat.completions.create(model="grok-3", messages=ask, tools=[WEATHER, CLOCK])
    assert [c.function.name for c in tool_calls_of(both)] == ["get_weather", "get_time"]
    assert len({c.id for c in tool_calls_of(both)}) == 2
    stream = await client.chat.completions.create(model="grok-3", messages=ask, tools=[WEATHER, CLOCK], stream=True)
    _, calls, _ = await collect(stream)
    assert [c["name"] for c in calls.values()] == ["get_weather", "get_time"] and sorted(calls) == [0, 1]
    one = await client.chat.completions.create(model="grok-3", messages=ask, tools=[WEATHER, CLOCK],
                                               parallel_tool_calls=False)
    assert [c.function.name for c in tool_calls_of(one)] == ["get_weather"]
    assert "Call at most one tool" in sent_prompt(live)


async def test_tool_choice(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    client = live.aclient()
    forced = await client.chat.completions.create(
        model="grok-3", messages=ASK, tools=[WEATHER, CLOCK],
        tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert [c.function.name for c in tool_calls_of(forced)] == ["get_time"]
    assert 'You must call the tool "get_time" now.' in sent_prompt(live)
    required = await client.chat.completions.create(model="grok-3", messages=ASK, tools=[CLOCK],
                                                    tool_choice="required")
    assert required.choices[0].finish_reason == "tool_calls"
    assert "You must call at least one of the tools" in sent_prompt(live)
    none = await client.chat.completions.create(model="grok-3", messages=ASK, tools=[WEATHER], tool_choice="none")
    assert none.choices[0].message.content == "Echo: Weather in Lima?" and "<tools>" not in sent_prompt(live)


@pytest.mark.parametrize("marker", ["[malformed-tool]", "[bad-args]"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_an_answer_off_the_convention_is_plain_text(start_gateway: StartGateway, marker: str,
                                                          stream: bool) -> None:
    live = await start_gateway()
    ask: list[ChatCompletionMessageParam] = [{"role": "user", "content": f"Weather in Lima? {marker}"}]
    client = live.aclient()
    if stream:
        content, calls, finishes = await collect(
            await client.chat.completions.create(model="grok-3", messages=ask, tools=[WEATHER], stream=True))
        assert not calls
    else:
        answer = await client.chat.completions.create(model="grok-3", messages=ask, tools=[WEATHER])
        content, finishes = content_of(answer), [answer.choices[0].finish_reason]
        assert not answer.choices[0].message.tool_calls
    assert finishes[-1] == "stop"
    assert content.startswith("Let me use a tool") and '<tool_call>{"name":"get_weather"' in content


async def test_a_failure_inside_a_call_never_sends_half_of_it(start_gateway: StartGateway) -> None:
    live = await start_gateway(grok={"first_byte_timeout": 0.4, "idle_timeout": 0.4})
    live.fake.inject("drop", endpoint="chat", after_lines=13)  # a few words, then a cut inside the call
    stream = await live.aclient().chat.completions.create(model="grok-3", messages=ASK, tools=[WEATHER],
                                                          stream=True)
    with pytest.raises(openai.APIError) as caught:
        await collect(stream)
    assert error_of(caught.value)["code"] == "upstream_error"
    chunks = live.bodies.seen[-1]
    assert chunks[2][-1] == "ErrorResponse"
    assert set(live.inflight().values()) == {0}


@pytest.mark.parametrize(("extra", "param"), [
    ({"tools": {"type": "function"}}, "tools"),
    ({"tools": [{"type": "code_interpreter"}]}, "tools[0].type"),
    ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools[0].function.name"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "other"}}},
     "tool_choice.function.name"),
    ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
    ({"tools": [WEATHER], "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
])
async def test_bad_tool_definitions_are_400s(start_gateway: StartGateway, extra: dict[str, Any], param: str) -> None:
    live = await start_gateway()
    with pytest.raises(openai.BadRequestError) as caught:
        await live.aclient().chat.completions.create(model="grok-3", messages=ASK, extra_body=extra)
    assert error_of(caught.value)["param"] == param
    assert live.chats() == []


LONG: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Tell me " + " ".join(f"word{i}" for i in range(40))}]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_max_tokens_stops_the_answer(start_gateway: StartGateway, stream: bool) -> None:
    """Not a tool matter, but the shared pipeline's: every surface stops at its token limit."""
    live = await start_gateway()
    client = live.aclient()
    if stream:
        content, _, finishes = await collect(await client.chat.completions.create(
            model="grok-3", messages=LONG, max_completion_tokens=6, stream=True))
    else:
        answer = await client.chat.completions.create(model="grok-3", messages=LONG, max_tokens=6)
        content, finishes = answer.choices[0].message.content or "", [answer.choices[0].finish_reason]
    assert finishes[-1] == "length" and content.startswith("Echo: Tell me") and "word39" not in content
    assert 6 <= count_tokens(content) <= 8
    assert set(live.inflight().values()) == {0}
