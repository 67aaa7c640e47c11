"""A Responses body as the chat pipeline's :class:`Conversation`, and its input as stored items.

``input`` is a string (one user message) or a list of items: messages (``input_text``,
``output_text``, ``input_image``, ``input_file`` parts), ``function_call`` and
``function_call_output``; ``reasoning`` items sent back are ignored. Items get an ``id``
when they have none, so ``input_items`` can list them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grok2api.api import invalid, random_hex
from grok2api_plugins.chat.request import Attachment, Message, function_tool, token_limit
from grok2api_plugins.chat.surface import Conversation
from grok2api_plugins.chat.tools import ChoiceMode, ToolCall, Toolset

ROLES = frozenset({"user", "assistant", "system", "developer"})
Item = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResponsesInput:
    items: list[Item]  # this request's input, normalized
    instructions: str | None
    toolset: Toolset
    tools: list[dict[str, Any]]  # echoed in the response
    tool_choice: Any
    stream: bool
    store: bool
    previous_response_id: str | None
    reasoning: dict[str, Any] | None
    show_reasoning: bool
    metadata: dict[str, Any]
    max_output_tokens: int | None


def parse_responses(body: dict[str, Any]) -> ResponsesInput:
    raw = body.get("input")
    if isinstance(raw, str):
        raw = [{"type": "message", "role": "user", "content": raw}]
    if not isinstance(raw, list) or not raw:
        raise invalid("'input' must be a string or a non-empty array of items", "input", "invalid_value")
    items = [normalize(item, f"input[{i}]") for i, item in enumerate(raw)]
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise invalid("'instructions' must be a string", "instructions", "invalid_type")
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise invalid("'tools' must be an array", "tools", "invalid_type")
    parsed_tools = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise invalid(f"'tools[{i}]': only function tools are supported", f"tools[{i}].type", "invalid_value")
        parsed_tools.append(function_tool(tool, f"tools[{i}]"))
    echoed = [{"type": "function", "name": t.name, "description": t.description or None, "parameters": t.parameters,
               "strict": raw_tool.get("strict") is True} for t, raw_tool in zip(parsed_tools, tools, strict=True)]
    mode, forced = _tool_choice(body.get("tool_choice"), [t.name for t in parsed_tools])
    previous = body.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous.startswith("resp_")):
        raise invalid("'previous_response_id' must be the id of a stored response", "previous_response_id")
    reasoning = body.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, dict):
        raise invalid("'reasoning' must be an object", "reasoning", "invalid_type")
    metadata = body.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise invalid("'metadata' must be an object", "metadata", "invalid_type")
    return ResponsesInput(
        items, instructions, Toolset(tuple(parsed_tools), mode, forced, _flag(body, "parallel_tool_calls", True)),
        echoed, body.get("tool_choice") or "auto", _flag(body, "stream", False), _flag(body, "store", True),
        previous, reasoning, _summaries(reasoning), metadata, token_limit(body, "max_output_tokens"))


def _summaries(reasoning: dict[str, Any] | None) -> bool:
    """Grok's thinking is shown as a reasoning summary when one is asked for (and effort is not none)."""
    return reasoning is not None and reasoning.get("summary") is not None and reasoning.get("effort") != "none"


def conversation(parsed: ResponsesInput, history: list[Item]) -> Conversation:
    """The earlier items (of ``previous_response_id``), then this request's, after its instructions."""
    messages = [Message("system", parsed.instructions)] if parsed.instructions else []
    messages += [m for item in [*history, *parsed.items] for m in _messages(item)]
    return Conversation(tuple(messages), parsed.toolset, parsed.show_reasoning, parsed.max_output_tokens)


def _flag(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(f"'{key}' must be a boolean", key, "invalid_type")
    return value


def _tool_choice(choice: Any, names: list[str]) -> tuple[ChoiceMode, str]:
    if choice is None or choice == "auto":
        return "auto", ""
    if choice in ("none", "required"):
        return choice, ""
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        if choice["name"] not in names:
            raise invalid(f"'tool_choice' names {choice['name']!r}, which is not in 'tools'", "tool_choice.name")
        return "function", choice["name"]
    raise invalid("'tool_choice' must be 'auto', 'none', 'required' or {\"type\": \"function\", \"name\": ...}",
                  "tool_choice")


def normalize(item: Any, param: str) -> Item:
    """One input item, checked, with an ``id`` and its content as a list of parts."""
    if not isinstance(item, dict):
        raise invalid(f"'{param}' must be an object", param, "invalid_type")
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in ROLES:
            raise invalid(f"'{param}.role' must be one of {', '.join(sorted(ROLES))}", f"{param}.role",
                          "invalid_role")
        content = item.get("content")
        if isinstance(content, str):
            content = [{"type": "output_text" if role == "assistant" else "input_text", "text": content}]
        if not isinstance(content, list):
            raise invalid(f"'{param}.content' must be a string or an array of parts", f"{param}.content",
                          "invalid_type")
        for j, part in enumerate(content):
            _check_part(part, f"{param}.content[{j}]")
        return {"type": "message", "id": item.get("id") or f"msg_{random_hex()[:24]}", "role": role,
                "status": "completed", "content": content}
    if kind == "function_call":
        for key in ("call_id", "name", "arguments"):
            if not isinstance(item.get(key), str):
                raise invalid(f"'{param}.{key}' must be a string", f"{param}.{key}", "invalid_type")
        return {"type": "function_call", "id": item.get("id") or f"fc_{random_hex()[:24]}",
                "call_id": item["call_id"], "name": item["name"], "arguments": item["arguments"],
                "status": "completed"}
    if kind == "function_call_output":
        if not isinstance(item.get("call_id"), str) or not isinstance(item.get("output"), str):
            raise invalid(f"'{param}' needs a string 'call_id' and 'output'", param, "invalid_type")
        return {"type": "function_call_output", "id": item.get("id") or f"fco_{random_hex()[:24]}",
                "call_id": item["call_id"], "output": item["output"], "status": "completed"}
    if kind == "reasoning":
        return {"type": "reasoning", "id": item.get("id") or f"rs_{random_hex()[:24]}",
                "summary": item.get("summary") if isinstance(item.get("summary"), list) else []}
    raise invalid(f"'{param}.type' {kind!r} is not supported (message, function_call, function_call_output)",
                  f"{param}.type", "invalid_value")


def _check_part(part: Any, param: str) -> None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text"):
        if not isinstance(part.get("text"), str):
            raise invalid(f"'{param}.text' must be a string", f"{param}.text", "invalid_type")
    elif kind == "input_image":
        if not isinstance(part.get("image_url"), str):
            raise invalid(f"'{param}.image_url' must be an http(s) URL or a data: URI (file ids are not supported)",
                          f"{param}.image_url", "invalid_value")
    elif kind == "input_file":
        if not isinstance(part.get("file_data"), str) and not isinstance(part.get("file_url"), str):
            raise invalid(f"'{param}' needs 'file_data' or 'file_url'", param, "missing_file_data")
    elif kind != "refusal":
        raise invalid(f"'{param}.type' must be input_text, output_text, input_image or input_file",
                      f"{param}.type", "invalid_value")


def _messages(item: Item) -> list[Message]:
    kind = item["type"]
    if kind == "function_call":
        return [Message("assistant", "", calls=(ToolCall(item["call_id"], item["name"], item["arguments"]),))]
    if kind == "function_call_output":
        return [Message("tool", item["output"], call_id=item["call_id"])]
    if kind == "reasoning":
        return []
    texts, attachments = [], []
    for j, part in enumerate(item["content"]):
        where = f"input.{item['id']}.content[{j}]"
        if part["type"] in ("input_text", "output_text"):
            texts.append(part["text"])
        elif part["type"] == "refusal":
            texts.append(str(part.get("refusal", "")))
        elif part["type"] == "input_image":
            attachments.append(Attachment("image", part["image_url"].strip(), f"{where}.image_url"))
        else:
            source = part.get("file_data") or part.get("file_url")
            attachments.append(Attachment("file", str(source).strip(), where, str(part.get("filename") or "")))
    role = "system" if item["role"] == "developer" else item["role"]
    return [Message(role, "\n".join(t for t in texts if t.strip()), tuple(attachments))]
