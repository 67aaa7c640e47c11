"""OpenAI's Responses API with the openai SDK against the fake Grok: create, stream, tools
(a full loop), reasoning summaries, stored responses and previous_response_id. Every body
and event is validated against OpenAI's schemas by the checking transport."""

from __future__ import annotations

import base64
from typing import Any

import openai
import orjson
import pytest
from openai import Omit, omit
from openai.types.responses import (
    FunctionToolParam,
    Response,
    ResponseFailedEvent,
    ResponseInputMessageItem,
    ResponseInputParam,
    ResponseInputText,
    ResponseReasoningItem,
)

from grok2api_plugins.chat.tests.conftest import StartGateway
from grok2api_plugins.chat.tests.support import Live, error_of

WEATHER: FunctionToolParam = {
    "type": "function", "name": "get_weather", "description": "Current weather of a city", "strict": False,
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


async def gateway(start_gateway: StartGateway, **options: Any) -> Live:
    return await start_gateway(plugins=("responses",), **options)


def prompt_of(live: Live) -> str:
    """The prompt the gateway sent Grok last."""
    prompt = live.chats()[-1].json["message"]
    assert isinstance(prompt, str), prompt
    return prompt


async def test_create_retrieve_list_and_delete(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    client = live.aclient()
    response = await client.responses.create(model="grok-3", instructions="Be brief.", input="Tell me about tides")
    assert response.status == "completed" and response.id.startswith("resp_")
    assert response.output_text == "Echo: Tell me about tides"
    assert response.usage is not None and response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert prompt_of(live) == "system: Be brief.\n\nTell me about tides"
    fetched = await client.responses.retrieve(response.id)
    assert fetched.output_text == response.output_text and fetched.id == response.id
    items = await client.responses.input_items.list(response.id)
    assert [i.type for i in items.data] == ["message"]
    item = items.data[0]
    assert isinstance(item, ResponseInputMessageItem) and isinstance(item.content[0], ResponseInputText), item
    assert item.content[0].text == "Tell me about tides"
    await client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(response.id)
    unstored = await client.responses.create(model="grok-3", input="Hi", store=False)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(unstored.id)
    assert {path for path, _, schemas in live.bodies.seen if schemas} >= {"/v1/responses",
                                                                          f"/v1/responses/{response.id}/input_items"}


async def test_previous_response_id_continues_the_conversation(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    client = live.aclient()
    first = await client.responses.create(model="grok-3", input="My name is Ada")
    second = await client.responses.create(model="grok-3", input="What is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id and second.output_text == "Echo: What is my name?"
    assert prompt_of(live) == "user: My name is Ada\n\nassistant: Echo: My name is Ada\n\nWhat is my name?"
    with pytest.raises(openai.NotFoundError) as missing:
        await client.responses.create(model="grok-3", input="x", previous_response_id="resp_nope")
    assert error_of(missing.value)["param"] == "previous_response_id"


async def test_a_stream_with_the_sdk_helper(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    async with live.aclient().responses.stream(model="grok-3", input="Stream please") as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert "response.output_text.delta" in kinds and kinds[-1] == "response.completed"
    assert final.output_text == "Echo: Stream please"
    assert (await live.aclient().responses.retrieve(final.id)).output_text == "Echo: Stream please"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_a_full_tool_loop(start_gateway: StartGateway, stream: bool) -> None:
    live = await gateway(start_gateway)
    client = live.aclient()

    async def ask(input: str | ResponseInputParam, previous_response_id: str | Omit = omit) -> Response:
        if not stream:
            return await client.responses.create(model="grok-3", tools=[WEATHER], input=input,
                                                 previous_response_id=previous_response_id)
        async with client.responses.stream(model="grok-3", tools=[WEATHER], input=input,
                                           previous_response_id=previous_response_id) as events:
            kinds = [event.type async for event in events]
            assert kinds[-1] == "response.completed"
            return await events.get_final_response()

    first = await ask(input="Weather in Rome?")
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert orjson.loads(calls[0].arguments) == {"city": "Weather in Rome?"}
    final = await ask(previous_response_id=first.id,
                      input=[{"type": "function_call_output", "call_id": calls[0].call_id, "output": "25 C, sunny"}])
    assert final.output_text == "Echo: 25 C, sunny" and not [i for i in final.output if i.type == "function_call"]
    assert f'<tool_result call_id="{calls[0].call_id}" name="get_weather">' in prompt_of(live)
    stateless = await ask(input=[{"role": "user", "content": "Weather in Rome?"},
                                 {"type": "function_call", "call_id": "call_9", "name": "get_weather",
                                  "arguments": "{\"city\": \"Rome\"}"},
                                 {"type": "function_call_output", "call_id": "call_9", "output": "24 C"}])
    assert stateless.output_text == "Echo: 24 C"


async def test_reasoning_summaries_from_groks_thinking(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    client = live.aclient()
    async with client.responses.stream(model="grok-4-thinking", input="Why is the sky blue?",
                                       reasoning={"effort": "medium", "summary": "auto"}) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert "response.reasoning_summary_text.delta" in kinds
    assert [item.type for item in final.output] == ["reasoning", "message"]
    reasoning = final.output[0]
    assert isinstance(reasoning, ResponseReasoningItem), reasoning
    assert "Thinking about your request" in reasoning.summary[0].text
    plain = await client.responses.create(model="grok-4-thinking", input="Why is the sky blue?")
    assert [item.type for item in plain.output] == ["message"]
    with_tools = await client.responses.create(model="grok-4-thinking", input="Weather in Rome?", tools=[WEATHER],
                                               reasoning={"summary": "concise"})
    assert [item.type for item in with_tools.output] == ["reasoning", "message", "function_call"]


async def test_an_input_image_is_uploaded(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x01" * 32).decode()
    response = await live.aclient().responses.create(model="grok-3", input=[{"role": "user", "content": [
        {"type": "input_image", "image_url": f"data:image/png;base64,{png}", "detail": "auto"},
        {"type": "input_text", "text": "What is this?"}]}])
    assert response.output_text == "Echo: What is this?"
    (upload,) = live.fake.requests_to("upload")
    assert (upload.json["fileMimeType"], upload.json["content"]) == ("image/png", png)


async def test_a_continuation_without_tools_still_reads_the_result(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    client = live.aclient()
    first = await client.responses.create(model="grok-3", input="Weather in Rome?", tools=[WEATHER])
    call = next(item for item in first.output if item.type == "function_call")
    final = await client.responses.create(model="grok-3", previous_response_id=first.id, input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "25 C"}])
    assert final.output_text == "Echo: 25 C" and "<tools>" not in prompt_of(live)


async def test_max_output_tokens_makes_an_incomplete_response(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    client = live.aclient()
    long = "Tell me " + " ".join(f"word{i}" for i in range(40))
    response = await client.responses.create(model="grok-3", input=long, max_output_tokens=16)
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens" and "word39" not in response.output_text
    assert response.max_output_tokens == 16
    async with client.responses.stream(model="grok-3", input=long, max_output_tokens=16) as stream:
        kinds = [event.type async for event in stream]
    assert kinds[-1] == "response.incomplete"


async def test_malformed_tool_output_is_a_message(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway)
    response = await live.aclient().responses.create(model="grok-3", tools=[WEATHER],
                                                     input="Rome [malformed-tool]")
    assert [item.type for item in response.output] == ["message"] and "<tool_call>" in response.output_text


async def test_an_upstream_failure_mid_stream_is_response_failed(start_gateway: StartGateway) -> None:
    live = await gateway(start_gateway, grok={"first_byte_timeout": 0.4, "idle_timeout": 0.4})
    live.fake.inject("drop", endpoint="chat", after_lines=5)
    stream = await live.aclient().responses.create(model="grok-3", input="Tell me a long story", stream=True)
    events = [event async for event in stream]
    assert events[0].type == "response.created" and events[-1].type == "response.failed"
    last = events[-1]
    assert isinstance(last, ResponseFailedEvent), last
    failed = last.response
    assert failed.status == "failed" and failed.error is not None and "Grok upstream failed" in failed.error.message
    assert set(live.inflight().values()) == {0}
    with pytest.raises(openai.NotFoundError):
        await live.aclient().responses.retrieve(failed.id)


@pytest.mark.parametrize(("body", "param"), [
    ({"input": []}, "input"),
    ({"input": [{"type": "computer_call"}]}, "input[0].type"),
    ({"input": "x", "tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0].image_url"),
])
async def test_bad_requests_are_400s(start_gateway: StartGateway, body: dict[str, Any], param: str) -> None:
    live = await gateway(start_gateway)
    with pytest.raises(openai.BadRequestError) as caught:
        await live.aclient().responses.create(model="grok-3", extra_body=body, input=body.get("input", "x"))
    assert error_of(caught.value)["param"] == param
