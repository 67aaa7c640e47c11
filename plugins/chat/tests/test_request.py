"""Request validation and prompt flattening: every refusal names its field."""

from __future__ import annotations

from typing import Any

import pytest

from grok2api.api import ApiError
from grok2api_plugins.chat.prompt import flatten
from grok2api_plugins.chat.request import ChatInput, parse_chat
from grok2api_plugins.chat.settings import ChatSettings
from grok2api_plugins.chat.tools import Convention

CONVENTION = Convention.of(ChatSettings())


def parse(body: dict[str, Any], stream: bool = False, thinking: bool = True) -> ChatInput:
    return parse_chat(body, default_stream=stream, default_thinking=thinking)


def user(content: Any) -> dict[str, Any]:
    return {"model": "grok-4", "messages": [{"role": "user", "content": content}]}


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": []}, "messages"),
    ({"messages": "hi"}, "messages"),
    ({"messages": ["hi"]}, "messages[0]"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": None}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    (user([]), "messages[0].content"),
    (user([{"text": "x"}]), "messages[0].content[0].type"),
    (user([{"type": "text", "text": 3}]), "messages[0].content[0].text"),
    (user([{"type": "video", "video": {}}]), "messages[0].content[0].type"),
    (user([{"type": "image_url", "image_url": {}}]), "messages[0].content[0].image_url.url"),
    (user([{"type": "image_url", "image_url": {"url": "file:///etc/passwd"}}]), "messages[0].content[0].image_url.url"),
    (user([{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "ogg"}}]),
     "messages[0].content[0].input_audio.format"),
    (user([{"type": "input_audio", "input_audio": {"format": "wav"}}]), "messages[0].content[0].input_audio.data"),
    (user([{"type": "file", "file": {"file_id": "file-1"}}]), "messages[0].content[0].file.file_id"),
    (user([{"type": "file", "file": {"url": "ftp://x/y"}}]), "messages[0].content[0].file.url"),
    (user([{"type": "file", "file": {}}]), "messages[0].content[0].file"),
    ({"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/y"}}]}]},
     "messages[0].content[0].type"),
    ({"messages": [{"role": "assistant", "content": None, "tool_calls": [{"function": {}}]}]},
     "messages[0].tool_calls[0].function.name"),
    ({**user("hi"), "stream": "yes"}, "stream"),
    ({**user("hi"), "stream": True, "stream_options": {"include_usage": 1}}, "stream_options.include_usage"),
    ({**user("hi"), "thinking": "maybe"}, "thinking"),
    ({**user("hi"), "reasoning_effort": 3}, "reasoning_effort"),
])
def test_refusals_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse(body)
    assert (caught.value.status, caught.value.param) == (400, param)


def test_defaults_and_switches() -> None:
    chat = parse(user("hi"))
    assert (chat.stream, chat.include_usage, chat.show_reasoning) == (False, False, True)
    assert parse(user("hi"), stream=True).stream
    assert parse({**user("hi"), "stream": True, "stream_options": {"include_usage": True}}).include_usage
    assert not parse({**user("hi"), "stream_options": {"include_usage": True}}).include_usage
    assert not parse({**user("hi"), "thinking": "disabled"}).show_reasoning
    assert not parse({**user("hi"), "thinking": {"type": "disabled"}}).show_reasoning
    assert not parse({**user("hi"), "reasoning_effort": "none"}).show_reasoning
    assert parse({**user("hi"), "reasoning_effort": "none", "thinking": "enabled"}).show_reasoning
    assert parse({**user("hi"), "reasoning_effort": "high"}, thinking=False).show_reasoning is False
    assert parse({**user("hi"), "temperature": 0.2, "tools": [], "n": 1}).messages[0].text == "hi"


def test_prompt_flattening_writes_tool_turns_by_the_convention() -> None:
    chat = parse({"messages": [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "Weather?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk="}}]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "call_1", "type": "function",
                         "function": {"name": "weather", "arguments": "{\"city\":\"Lima\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "22 C"},
        {"role": "user", "content": "And tomorrow?"},
        {"role": "assistant", "content": [{"type": "text", "text": "  "}]},
    ]})
    prompt = flatten(chat.messages, CONVENTION)
    assert prompt.text == ("system: Be terse.\n\nuser: Weather?\n\n"
                           "assistant: <tool_call>{\"name\":\"weather\",\"arguments\":{\"city\":\"Lima\"}}"
                           "</tool_call>\n\n"
                           "tool: <tool_result call_id=\"call_1\" name=\"weather\">\n22 C\n</tool_result>\n\n"
                           "And tomorrow?")
    assert [(a.kind, a.param) for a in prompt.attachments] == [("image", "messages[1].content[1].image_url.url")]


def test_an_empty_conversation_is_refused() -> None:
    with pytest.raises(ApiError) as caught:
        flatten(parse(user("   ")).messages, CONVENTION)
    assert caught.value.param == "messages"
