"""The tool-call parser and the schema check: however the answer is cut into chunks, the
same text and the same calls come out, and nothing but a valid call is ever a call."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grok2api_plugins.chat.schema import schema_errors
from grok2api_plugins.chat.settings import ChatSettings
from grok2api_plugins.chat.tools import Convention, Tool, ToolCall, ToolCallParser, Toolset

CONVENTION = Convention.of(ChatSettings())
WEATHER = Tool("weather", "The weather in a city", {
    "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
    "required": ["city"], "additionalProperties": False})
CLOCK = Tool("clock")
TOOLS = Toolset((WEATHER, CLOCK))


def run(chunks: list[str], toolset: Toolset = TOOLS) -> tuple[str, list[tuple[str, Any]]]:
    """The text and the (name, arguments) calls the parser makes of ``chunks``."""
    parser = ToolCallParser(CONVENTION, toolset)
    text, calls = "", []
    for chunk in chunks:
        for piece in parser.feed(chunk):
            if isinstance(piece, ToolCall):
                calls.append((piece.name, orjson.loads(piece.arguments)))
            else:
                text += piece
    return text + parser.flush(), calls


def call(name: str, arguments: Any) -> str:
    return "<tool_call>" + orjson.dumps({"name": name, "arguments": arguments}).decode() + "</tool_call>"


GOOD = call("weather", {"city": "Lima", "days": 2})
CASES = [  # answer text, the text left, the calls
    ("Just text, < and <tool but no call.", "Just text, < and <tool but no call.", []),
    (f"Checking.\n{GOOD}\n", "Checking.\n\n", [("weather", {"city": "Lima", "days": 2})]),
    (f"{GOOD}{call('clock', {})}", "", [("weather", {"city": "Lima", "days": 2}), ("clock", {})]),
    ('<tool_call>{"name": "weather", "arguments": {"city": </tool_call> after',
     '<tool_call>{"name": "weather", "arguments": {"city": </tool_call> after', []),
    (call("weather", {"days": 2}), call("weather", {"days": 2}), []),  # misses the required city
    (call("weather", {"city": "Lima", "wind": 1}), call("weather", {"city": "Lima", "wind": 1}), []),
    (call("nope", {}), call("nope", {}), []),
    ('<tool_call>{"name": "clock", "arguments": "{}"}</tool_call>', "", [("clock", {})]),  # arguments as text
    ("Half a call <tool_call>{\"name\": \"clock\"", "Half a call <tool_call>{\"name\": \"clock\"", []),
    ("ends with a marker's start <tool_", "ends with a marker's start <tool_", []),
    (f"a stray <tool_call> then {GOOD}", "a stray <tool_call> then ", [("weather", {"city": "Lima", "days": 2})]),
]


@pytest.mark.parametrize(("answer", "text", "calls"), CASES)
def test_every_split_point_gives_the_same_result(answer: str, text: str, calls: list[Any]) -> None:
    assert run([answer]) == (text, calls)
    for cut in range(len(answer) + 1):
        assert run([answer[:cut], answer[cut:]]) == (text, calls), cut
    assert run(list(answer)) == (text, calls)


plain = st.text(alphabet=st.sampled_from("ab <>/_{}\"\n:tolcl"), max_size=12)
pieces = st.lists(st.one_of(plain.map(lambda t: ("text", t)),
                            st.sampled_from([GOOD, call("clock", {})]).map(lambda c: ("call", c))), max_size=6)


@settings(max_examples=200, deadline=None)
@given(pieces, st.data())
def test_any_answer_cut_anywhere_parses_as_written(parts: list[tuple[str, str]], data: st.DataObject) -> None:
    """Plain text (made of marker-like characters) and calls, in any order, cut at random points."""
    answer = "".join(p for _, p in parts)
    whole = run([answer])
    cuts = sorted(data.draw(st.lists(st.integers(0, len(answer)), max_size=8)))
    chunks = [answer[a:b] for a, b in zip([0, *cuts], [*cuts, len(answer)], strict=True)]
    assert run(chunks) == whole
    text, calls = whole
    assert len(calls) >= sum(kind == "call" for kind, _ in parts)  # plain text may complete a call, never hide one
    if not any(kind == "call" for kind, _ in parts) and "<tool_call>" not in answer:
        assert text == answer and calls == []


def test_one_call_only_when_parallel_calls_are_off() -> None:
    assert run([GOOD + call("clock", {})], Toolset((WEATHER, CLOCK), parallel=False)) == (
        "", [("weather", {"city": "Lima", "days": 2})])


def test_a_forced_tool_is_the_only_one_callable() -> None:
    forced = Toolset((WEATHER, CLOCK), "function", "clock")
    assert run([GOOD + call("clock", {})], forced) == (GOOD, [("clock", {})])


def test_the_prompt_lists_the_tools_and_the_rule() -> None:
    text = CONVENTION.instructions(Toolset((WEATHER, CLOCK), "function", "clock", parallel=False))
    assert WEATHER.line() in text and '{"name":"clock","parameters":{"type":"object","properties":{}}}' in text
    assert 'You must call the tool "clock" now.' in text and "at most one tool" in text
    assert "<tool_call>" in text and "</tool_call>" in text


def test_the_convention_and_its_prompt_are_configurable() -> None:
    custom = Convention.of(ChatSettings(tool_call_open="[[call]]", tool_call_close="[[/call]]",
                                        tool_prompt="Tools:\n{tools}\nUse {open}…{close}. {rules}"))
    parser = ToolCallParser(custom, TOOLS)
    assert [*parser.feed('x[[call]]{"name": "clock"}[[/call]]')][0] == "x"
    assert parser.calls[0].name == "clock"
    with pytest.raises(ValueError, match="tool_prompt"):
        ChatSettings(tool_prompt="no tools here {open}")
    with pytest.raises(ValueError, match="tool_prompt"):
        ChatSettings(tool_prompt="{tools} {open} {unknown}")


@pytest.mark.parametrize(("value", "schema", "ok"), [
    ({"a": 1}, {"type": "object", "properties": {"a": {"type": "integer"}}}, True),
    ({"a": 1.5}, {"type": "object", "properties": {"a": {"type": "integer"}}}, False),
    ({"a": True}, {"properties": {"a": {"type": "number"}}}, False),
    ({"a": None}, {"properties": {"a": {"type": ["string", "null"]}}}, True),
    ({"a": "x"}, {"properties": {"a": {"enum": ["y", "z"]}}}, False),
    ({"a": [1, "2"]}, {"properties": {"a": {"type": "array", "items": {"type": "integer"}}}}, False),
    ({"a": [1, 2]}, {"properties": {"a": {"type": "array", "maxItems": 1}}}, False),
    ({"a": "xy"}, {"properties": {"a": {"type": "string", "minLength": 3}}}, False),
    ({"a": 5}, {"properties": {"a": {"anyOf": [{"type": "string"}, {"type": "integer", "maximum": 4}]}}}, False),
    ({"a": 4}, {"properties": {"a": {"anyOf": [{"type": "string"}, {"type": "integer", "maximum": 4}]}}}, True),
    ({"b": {"c": 1}}, {"additionalProperties": {"type": "object", "required": ["d"]}}, False),
    ({"a": "2026-01-01"}, {"properties": {"a": {"type": "string", "format": "date", "$ref": "#/x"}}}, True),
])
def test_the_schema_check(value: Any, schema: dict[str, Any], ok: bool) -> None:
    assert (schema_errors(value, schema) == []) is ok
