"""Tool calling on a model without native tools: a prompt convention and its parser.

Grok's web app has no function calling, so the gateway writes the tool definitions and
a calling convention into the prompt and reads calls back out of the answer text. A
call is one JSON object ``{"name": …, "arguments": {…}}`` between the configured
opening and closing markers (``<tool_call>`` and ``</tool_call>`` by default). The
parser works on the answer as it streams: text outside markers passes through at
once (a possible start of a marker is held back until the next chunk decides it), and
a call leaves only when its closing marker arrived and it parsed and matched its
tool's schema. Anything else — broken JSON, an unknown tool, arguments the schema
refuses, an unclosed marker — is handed back as plain text, so a client never sees a
half-parsed call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from grok2api.api import random_hex
from grok2api_plugins.chat.schema import schema_errors
from grok2api_plugins.chat.settings import ChatSettings

ChoiceMode = Literal["auto", "none", "required", "function"]

#: the rule lines of the prompt, by ``tool_choice`` ({name} is the forced tool's)
CHOICE_RULES: dict[ChoiceMode, str] = {
    "auto": "Call a tool only when it helps to answer; otherwise answer in plain text.",
    "required": "You must call at least one of the tools before anything else.",
    "function": 'You must call the tool "{name}" now.',
    "none": "",
}
SINGLE_RULE = "Call at most one tool in this answer."


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """The tool as one JSON line of the prompt's tool list."""
        spec: dict[str, Any] = {"name": self.name}
        if self.description:
            spec["description"] = self.description
        spec["parameters"] = self.parameters or {"type": "object", "properties": {}}
        return orjson.dumps(spec).decode()


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One call the model made (or made in an earlier turn): ``arguments`` is JSON text."""

    id: str
    name: str
    arguments: str

    @classmethod
    def new(cls, name: str, arguments: dict[str, Any]) -> ToolCall:
        return cls(f"call_{random_hex()[:24]}", name, orjson.dumps(arguments).decode())


@dataclass(frozen=True, slots=True)
class Toolset:
    """The tools a request offers and how the model may use them."""

    tools: tuple[Tool, ...] = ()
    choice: ChoiceMode = "auto"
    forced: str = ""  # the tool's name when ``choice`` is "function"
    parallel: bool = True

    @property
    def active(self) -> bool:
        """Whether the prompt offers tools and the answer is parsed for calls."""
        return bool(self.tools) and self.choice != "none"

    def get(self, name: str) -> Tool | None:
        if self.choice == "function" and name != self.forced:
            return None
        return next((t for t in self.tools if t.name == name), None)


NO_TOOLS = Toolset()


@dataclass(frozen=True, slots=True)
class Convention:
    """How calls are written: the markers, and the prompt that teaches them (``[chat]``)."""

    open: str
    close: str
    prompt: str

    @classmethod
    def of(cls, chat: ChatSettings) -> Convention:
        return cls(chat.tool_call_open, chat.tool_call_close, chat.tool_prompt)

    def call(self, name: str, arguments: str) -> str:
        """A call written as the model is told to write one (for the history of earlier turns)."""
        try:
            parsed = orjson.loads(arguments or "{}")
        except orjson.JSONDecodeError:
            parsed = arguments
        return self.open + orjson.dumps({"name": name, "arguments": parsed}).decode() + self.close

    def instructions(self, toolset: Toolset) -> str:
        """The block the prompt starts with: the tools, the convention, the choice rule."""
        rules = [CHOICE_RULES[toolset.choice].format(name=toolset.forced)]
        if not toolset.parallel:
            rules.append(SINGLE_RULE)
        return self.prompt.format(tools="\n".join(t.line() for t in toolset.tools), open=self.open,
                                  close=self.close, rules=" ".join(r for r in rules if r)).strip()


class ToolCallParser:
    """Splits streamed answer text into plain text and validated calls (module docstring)."""

    def __init__(self, convention: Convention, toolset: Toolset) -> None:
        self._open, self._close = convention.open, convention.close
        self._toolset = toolset
        self._buffer = ""
        self._inside = False
        self.calls: list[ToolCall] = []

    def feed(self, text: str) -> Iterator[str | ToolCall]:
        """What can be decided now: plain text pieces and finished calls, in order."""
        self._buffer += text
        while self._buffer:
            if self._inside:
                end = self._buffer.find(self._close)
                if end < 0:
                    return
                body, self._buffer = self._buffer[:end], self._buffer[end + len(self._close):]
                self._inside = False
                yield from self._decide(body)
                continue
            start = self._buffer.find(self._open)
            if start >= 0:
                if start:
                    yield self._buffer[:start]
                self._buffer = self._buffer[start + len(self._open):]
                self._inside = True
                continue
            keep = _partial_suffix(self._buffer, self._open)
            ready, self._buffer = self._buffer[:len(self._buffer) - keep], self._buffer[len(self._buffer) - keep:]
            if ready:
                yield ready
            return

    def flush(self) -> str:
        """The end of the answer: whatever is held back, an unclosed call as the text it was."""
        held = (self._open if self._inside else "") + self._buffer
        self._buffer, self._inside = "", False
        return held

    def _decide(self, body: str) -> Iterable[str | ToolCall]:
        inner = body.rfind(self._open)
        if inner >= 0:  # a marker opened again inside: what came before it is text, the call starts there
            return [self._open + body[:inner], *self._decide(body[inner + len(self._open):])]
        call = self._call(body)
        if call is None:
            return [self._open + body + self._close]
        if self.calls and not self._toolset.parallel:
            return []  # the client asked for one call: later ones are dropped, not shown as text
        self.calls.append(call)
        return [call]

    def _call(self, body: str) -> ToolCall | None:
        try:
            parsed = orjson.loads(body.strip())
        except orjson.JSONDecodeError:
            return None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("name"), str):
            return None
        tool = self._toolset.get(parsed["name"])
        arguments = parsed.get("arguments", {})
        if isinstance(arguments, str):  # some models write the arguments as JSON text
            try:
                arguments = orjson.loads(arguments or "{}")
            except orjson.JSONDecodeError:
                return None
        if tool is None or not isinstance(arguments, dict):
            return None
        if tool.parameters and schema_errors(arguments, tool.parameters):
            return None
        return ToolCall.new(tool.name, arguments)


def _partial_suffix(text: str, marker: str) -> int:
    """Length of the longest end of ``text`` that is a proper start of ``marker``."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if text.endswith(marker[:size]):
            return size
    return 0
