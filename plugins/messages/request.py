"""An Anthropic Messages body as the chat pipeline's :class:`Conversation`.

Lenient where Anthropic's clients differ from the API's letter: ``system`` messages
inside ``messages`` are kept in place (a coding agent sends them), unknown body fields
and block types it cannot use (``thinking`` sent back, server-tool results, citations)
are ignored, not refused; Anthropic-defined server tools (a dated ``type``) are not on
offer. What is refused is a 400 naming the field as Anthropic does
(``messages.1.content.0.source``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from grok2api.api import invalid
from grok2api_plugins.chat.request import Attachment, Message
from grok2api_plugins.chat.surface import Conversation
from grok2api_plugins.chat.tools import ChoiceMode, Tool, ToolCall, Toolset

ROLES = frozenset({"user", "assistant", "system"})
IGNORED_BLOCKS = frozenset({"thinking", "redacted_thinking", "server_tool_use", "web_search_tool_result",
                            "web_fetch_tool_result", "code_execution_tool_result", "search_result",
                            "container_upload"})


@dataclass(frozen=True, slots=True)
class MessagesInput:
    conversation: Conversation
    stream: bool


def parse_messages(body: dict[str, Any], *, count_only: bool = False) -> MessagesInput:
    """``count_only``: the count_tokens body, which has no ``max_tokens`` nor ``stream``."""
    max_tokens = None
    if not count_only:
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
            raise invalid("max_tokens: Field required (a non-negative integer)", "max_tokens", "invalid_value")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise invalid("messages: must be a non-empty array of messages", "messages", "invalid_messages")
    history = [Message("system", text) for text in [_system(body.get("system"))] if text]
    for i, message in enumerate(raw):
        history += _message(message, f"messages.{i}")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise invalid("stream: must be a boolean", "stream", "invalid_type")
    return MessagesInput(Conversation(tuple(history), _toolset(body), _thinking(body.get("thinking")), max_tokens),
                         stream and not count_only)


def _system(system: Any, param: str = "system") -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n".join(_text_block(b, f"{param}.{j}") for j, b in enumerate(system))
    raise invalid(f"{param}: must be a string or an array of text blocks", param, "invalid_type")


def _text_block(block: Any, param: str) -> str:
    if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
        raise invalid(f"{param}: must be a text block ({{\"type\": \"text\", \"text\": ...}})", param, "invalid_type")
    return str(block["text"])


def _message(raw: Any, param: str) -> list[Message]:
    """One Anthropic message as chat messages: a user turn's tool results come first, each its own."""
    if not isinstance(raw, dict):
        raise invalid(f"{param}: must be an object with 'role' and 'content'", param, "invalid_type")
    role = raw.get("role")
    if role not in ROLES:
        raise invalid(f"{param}.role: must be one of assistant, system, user", f"{param}.role", "invalid_role")
    content = raw.get("content")
    if role == "system":
        return [Message("system", _system(content, f"{param}.content"))]
    if isinstance(content, str):
        return [Message(role, content)]
    if not isinstance(content, list):
        raise invalid(f"{param}.content: must be a string or an array of content blocks", f"{param}.content",
                      "invalid_type")
    results: list[Message] = []
    texts: list[str] = []
    attachments: list[Attachment] = []
    calls: list[ToolCall] = []
    for j, block in enumerate(content):
        where = f"{param}.content.{j}"
        kind = block.get("type") if isinstance(block, dict) else None
        if not isinstance(kind, str):
            raise invalid(f"{where}: must be a content block with a 'type'", where, "missing_type")
        if kind == "text":
            texts.append(_text_block(block, where))
        elif kind in ("image", "document") and role == "user":
            attachments.append(_source(block.get("source"), kind, f"{where}.source"))
        elif kind == "tool_use" and role == "assistant":
            calls.append(_tool_use(block, where))
        elif kind == "tool_result" and role == "user":
            results.append(_tool_result(block, where))
        elif kind not in IGNORED_BLOCKS:
            raise invalid(f"{where}.type: {kind!r} is not allowed in a {role} message", f"{where}.type",
                          "invalid_type")
    text = "\n".join(t for t in texts if t.strip())
    if text or attachments or calls:
        results.append(Message(role, text, tuple(attachments), tuple(calls)))
    return results


def _source(source: Any, kind: str, param: str) -> Attachment:
    """An image or document source: base64 (as a data URI), a URL, or plain text."""
    if not isinstance(source, dict):
        raise invalid(f"{param}: must be an object with a 'type'", param, "invalid_type")
    if source.get("type") == "base64" and isinstance(source.get("data"), str) and source["data"].strip():
        mime = source.get("media_type") if isinstance(source.get("media_type"), str) else ""
        return Attachment("image" if kind == "image" else "file", f"data:{mime};base64,{source['data'].strip()}",
                          f"{param}.data")
    if source.get("type") == "url" and isinstance(source.get("url"), str):
        url = source["url"].strip()
        if not url.lower().startswith(("http://", "https://")):
            raise invalid(f"{param}.url: must be an http(s) URL", f"{param}.url", "invalid_url")
        return Attachment("image" if kind == "image" else "file", url, f"{param}.url")
    if kind == "document" and source.get("type") == "text" and isinstance(source.get("data"), str):
        return Attachment("file", source["data"], f"{param}.data", "document.txt", "text/plain")
    raise invalid(f"{param}: supported sources are base64 and url (and text for documents); file ids are not",
                  param, "unsupported_value")


def _tool_use(block: dict[str, Any], param: str) -> ToolCall:
    name, call_id, arguments = block.get("name"), block.get("id"), block.get("input", {})
    if not isinstance(name, str) or not isinstance(call_id, str) or not isinstance(arguments, dict):
        raise invalid(f"{param}: a tool_use block needs 'id', 'name' and an object 'input'", param, "invalid_value")
    return ToolCall(call_id, name, orjson.dumps(arguments).decode())


def _tool_result(block: dict[str, Any], param: str) -> Message:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise invalid(f"{param}.tool_use_id: Field required", f"{param}.tool_use_id", "invalid_value")
    content = block.get("content", "")
    texts: list[str] = []
    attachments: list[Attachment] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for k, part in enumerate(content):
            where = f"{param}.content.{k}"
            if isinstance(part, dict) and part.get("type") in ("image", "document"):
                attachments.append(_source(part.get("source"), str(part["type"]), f"{where}.source"))
            else:
                texts.append(_text_block(part, where))
    else:
        raise invalid(f"{param}.content: must be a string or an array of blocks", f"{param}.content",
                      "invalid_type")
    text = "\n".join(texts)
    if block.get("is_error") is True:
        text = f"[the tool failed]\n{text}"
    return Message("tool", text, tuple(attachments), call_id=call_id)


def _toolset(body: dict[str, Any]) -> Toolset:
    raw = body.get("tools") or []
    if not isinstance(raw, list):
        raise invalid("tools: must be an array of tools", "tools", "invalid_type")
    tools = []
    for i, tool in enumerate(raw):
        param = f"tools.{i}"
        if not isinstance(tool, dict):
            raise invalid(f"{param}: must be a tool object", param, "invalid_type")
        if tool.get("type") not in (None, "custom"):
            continue  # an Anthropic-defined server tool: nothing here runs it
        name, schema = tool.get("name"), tool.get("input_schema")
        if not isinstance(name, str) or not name.strip():
            raise invalid(f"{param}.name: Field required", f"{param}.name", "invalid_value")
        if not isinstance(schema, dict):
            raise invalid(f"{param}.input_schema: Field required (a JSON Schema object)", f"{param}.input_schema",
                          "invalid_value")
        description = given if isinstance(given := tool.get("description"), str) else ""
        tools.append(Tool(name.strip(), description, schema))
    mode, forced, parallel = _tool_choice(body.get("tool_choice"), [t.name for t in tools])
    return Toolset(tuple(tools), mode, forced, parallel)


_CHOICES: dict[str, ChoiceMode] = {"auto": "auto", "any": "required", "tool": "function", "none": "none"}


def _tool_choice(choice: Any, names: list[str]) -> tuple[ChoiceMode, str, bool]:
    if choice is None:
        return "auto", "", True
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in _CHOICES:
        raise invalid("tool_choice.type: must be auto, any, tool or none", "tool_choice.type", "invalid_value")
    assert isinstance(choice, dict)
    forced = ""
    if kind == "tool":
        forced = name if isinstance(name := choice.get("name"), str) else ""
        if forced not in names:
            raise invalid(f"tool_choice.name: {forced!r} is not one of the tools", "tool_choice.name",
                          "invalid_value")
    return _CHOICES[kind], forced, choice.get("disable_parallel_tool_use") is not True


def _thinking(thinking: Any) -> bool:
    """Grok's reasoning as ``thinking`` blocks when asked for (enabled or adaptive), else none."""
    if thinking is None:
        return False
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in ("enabled", "adaptive", "disabled", "between_tools"):
        raise invalid("thinking.type: must be enabled, adaptive or disabled", "thinking.type", "invalid_value")
    return kind in ("enabled", "adaptive") and thinking.get("display") != "omitted"
