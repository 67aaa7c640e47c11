"""Validation of an OpenAI chat-completions body into typed messages.

Every refusal is a 400 whose ``param`` is the exact path of the bad field
(``messages[2].content[0].image_url.url``). Fields the gateway cannot honour
(``temperature``, ``n``, …) are ignored, as the original did. ``tools``,
``tool_choice`` and ``parallel_tool_calls`` become a :class:`Toolset`; an assistant's
``tool_calls`` and the ``tool`` messages answering them are kept as typed calls and
results, which the prompt writes out by the calling convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import orjson

from grok2api.api import invalid
from grok2api_plugins.chat.tools import ChoiceMode, Tool, ToolCall, Toolset

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
AUDIO_FORMATS = {"wav": "audio/wav", "mp3": "audio/mpeg"}

AttachmentKind = Literal["image", "audio", "file"]


@dataclass(frozen=True, slots=True)
class Attachment:
    """Something to upload: ``source`` is an http(s) URL, a data URI or bare base64."""

    kind: AttachmentKind
    source: str
    param: str
    filename: str = ""
    mime: str = ""


@dataclass(frozen=True, slots=True)
class Message:
    role: str
    text: str
    attachments: tuple[Attachment, ...] = ()
    calls: tuple[ToolCall, ...] = ()  # an assistant's tool calls
    call_id: str = ""  # the call a tool message answers


@dataclass(frozen=True, slots=True)
class ChatInput:
    messages: tuple[Message, ...]
    stream: bool
    include_usage: bool
    show_reasoning: bool
    toolset: Toolset = Toolset()
    max_tokens: int | None = None


def parse_chat(body: dict[str, Any], *, default_stream: bool, default_thinking: bool) -> ChatInput:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid("'messages' must be a non-empty array of message objects", "messages", "invalid_messages")
    parsed = tuple(_message(m, f"messages[{i}]") for i, m in enumerate(messages))
    stream = _optional_bool(body, "stream", default_stream)
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise invalid("'stream_options' must be an object", "stream_options", "invalid_type")
    include_usage = stream and _optional_bool(options or {}, "include_usage", False, "stream_options.")
    return ChatInput(parsed, stream, include_usage, _show_reasoning(body, default_thinking), parse_toolset(body),
                     token_limit(body, "max_completion_tokens") or token_limit(body, "max_tokens"))


def token_limit(body: dict[str, Any], key: str) -> int | None:
    """A positive integer limit on the answer's tokens, or None when not given."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise invalid(f"'{key}' must be a positive integer", key, "invalid_value")
    return value


def parse_toolset(body: dict[str, Any]) -> Toolset:
    """``tools`` (function tools), ``tool_choice`` and ``parallel_tool_calls`` of a chat body."""
    raw = body.get("tools")
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raise invalid("'tools' must be an array of tool objects", "tools", "invalid_type")
    tools = []
    for i, entry in enumerate(raw):
        param = f"tools[{i}]"
        if not isinstance(entry, dict) or entry.get("type", "function") != "function":
            raise invalid(f"'{param}' must be a function tool ({{\"type\": \"function\", \"function\": {{...}}}})",
                          f"{param}.type", "invalid_type")
        tools.append(function_tool(entry.get("function"), f"{param}.function"))
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise invalid("tool names must be unique", "tools", "invalid_value")
    mode, forced = _tool_choice(body.get("tool_choice"), names)
    return Toolset(tuple(tools), mode, forced, _optional_bool(body, "parallel_tool_calls", True))


def function_tool(spec: Any, param: str) -> Tool:
    """One function's ``name``, ``description`` and JSON Schema ``parameters``."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"].strip():
        raise invalid(f"'{param}.name' must be a non-empty string", f"{param}.name", "invalid_value")
    description = spec.get("description") or ""
    if not isinstance(description, str):
        raise invalid(f"'{param}.description' must be a string", f"{param}.description", "invalid_type")
    parameters = spec.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise invalid(f"'{param}.parameters' must be a JSON Schema object", f"{param}.parameters", "invalid_type")
    return Tool(spec["name"].strip(), description, parameters)


def _tool_choice(choice: Any, names: list[str]) -> tuple[ChoiceMode, str]:
    if choice is None or choice == "auto":
        return "auto", ""
    if choice in ("none", "required"):
        return choice, ""
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise invalid("'tool_choice' must be 'auto', 'none', 'required' or {\"type\": \"function\", "
                      "\"function\": {\"name\": ...}}", "tool_choice", "invalid_value")
    if name not in names:
        raise invalid(f"'tool_choice' names {name!r}, which is not in 'tools'", "tool_choice.function.name",
                      "invalid_value")
    return "function", name


def _optional_bool(obj: dict[str, Any], key: str, default: bool, prefix: str = "") -> bool:
    value = obj.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(f"'{prefix}{key}' must be a boolean", f"{prefix}{key}", "invalid_type")
    return value


def _show_reasoning(body: dict[str, Any], default: bool) -> bool:
    """``thinking`` (``enabled``/``disabled``, also as ``{"type": …}``) wins over
    ``reasoning_effort``, where only ``none`` means anything: no reasoning."""
    thinking = body.get("thinking")
    if isinstance(thinking, dict):
        thinking = thinking.get("type")
    if thinking is not None:
        if thinking not in ("enabled", "disabled"):
            raise invalid("'thinking' must be 'enabled' or 'disabled'", "thinking", "invalid_value")
        return bool(thinking == "enabled")
    effort = body.get("reasoning_effort")
    if effort is not None and not isinstance(effort, str):
        raise invalid("'reasoning_effort' must be a string", "reasoning_effort", "invalid_type")
    return False if effort == "none" else default


def _message(raw: Any, param: str) -> Message:
    if not isinstance(raw, dict):
        raise invalid(f"'{param}' must be an object with 'role' and 'content'", param, "invalid_type")
    role = raw.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise invalid(f"'{param}.role' must be one of {', '.join(sorted(ROLES))}", f"{param}.role", "invalid_role")
    content = raw.get("content")
    texts: list[str] = []
    attachments: list[Attachment] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        if not content and role == "user":
            raise invalid(f"'{param}.content' must not be an empty array", f"{param}.content", "empty_content")
        for j, part in enumerate(content):
            _part(part, role, f"{param}.content[{j}]", texts, attachments)
    elif content is not None or role not in ("assistant", "tool", "function"):
        raise invalid(f"'{param}.content' must be a string or an array of content parts", f"{param}.content",
                      "invalid_type")
    calls: tuple[ToolCall, ...] = ()
    call_id = ""
    if role == "assistant":
        calls = _tool_calls(raw.get("tool_calls"), f"{param}.tool_calls")
    elif role in ("tool", "function"):
        ref = raw.get("tool_call_id") or raw.get("name")
        call_id = ref if isinstance(ref, str) else ""
    text = "\n".join(t for t in texts if t.strip())
    return Message(role, text, tuple(attachments), calls, call_id)


def _tool_calls(calls: Any, param: str) -> tuple[ToolCall, ...]:
    """An assistant's earlier tool calls, for the prompt's history."""
    if calls is None:
        return ()
    if not isinstance(calls, list):
        raise invalid(f"'{param}' must be an array", param, "invalid_type")
    parsed = []
    for k, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise invalid(f"'{param}[{k}].function.name' must be a string", f"{param}[{k}].function.name",
                          "invalid_type")
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments).decode()
        parsed.append(ToolCall(call["id"] if isinstance(call.get("id"), str) else "", function["name"], arguments))
    return tuple(parsed)


def _part(part: Any, role: str, param: str, texts: list[str], attachments: list[Attachment]) -> None:
    if not isinstance(part, dict):
        raise invalid(f"'{param}' must be an object with a 'type'", param, "invalid_type")
    kind = part.get("type")
    if not isinstance(kind, str) or not kind.strip():
        raise invalid(f"'{param}.type' must be a non-empty string", f"{param}.type", "missing_type")
    if kind in ("text", "refusal"):
        value = part.get(kind)
        if not isinstance(value, str):
            raise invalid(f"'{param}.{kind}' must be a string", f"{param}.{kind}", "invalid_type")
        texts.append(value)
        return
    if role != "user" or kind not in ("image_url", "input_audio", "file"):
        allowed = "text, image_url, input_audio, file" if role == "user" else "text"
        raise invalid(f"'{param}.type' {kind!r} is not allowed in a {role} message (allowed: {allowed})",
                      f"{param}.type", "invalid_type")
    if kind == "image_url":
        attachments.append(_image(part.get("image_url"), f"{param}.image_url"))
    elif kind == "input_audio":
        attachments.append(_audio(part.get("input_audio"), f"{param}.input_audio"))
    else:
        attachments.append(_file(part.get("file"), f"{param}.file"))


def _image(obj: Any, param: str) -> Attachment:
    url = obj.get("url") if isinstance(obj, dict) else None
    if not isinstance(url, str) or not url.strip():
        raise invalid(f"'{param}.url' must be a string", f"{param}.url", "missing_url")
    url = url.strip()
    if not url.lower().startswith(("http://", "https://", "data:")):
        raise invalid(f"'{param}.url' must be an http(s) URL or a data: URI", f"{param}.url", "invalid_url")
    return Attachment("image", url, f"{param}.url")


def _audio(obj: Any, param: str) -> Attachment:
    if not isinstance(obj, dict):
        raise invalid(f"'{param}' must be an object with 'data' and 'format'", param, "invalid_type")
    data, fmt = obj.get("data"), obj.get("format")
    if not isinstance(data, str) or not data.strip():
        raise invalid(f"'{param}.data' must be base64-encoded audio", f"{param}.data", "invalid_value")
    if not isinstance(fmt, str) or fmt not in AUDIO_FORMATS:
        raise invalid(f"'{param}.format' must be one of {', '.join(AUDIO_FORMATS)}", f"{param}.format",
                      "invalid_value")
    return Attachment("audio", data.strip(), f"{param}.data", f"audio.{fmt}", AUDIO_FORMATS[fmt])


def _file(obj: Any, param: str) -> Attachment:
    if not isinstance(obj, dict):
        raise invalid(f"'{param}' must be an object with 'file_data'", param, "invalid_type")
    named = obj.get("filename")
    filename = named if isinstance(named, str) else ""
    for key in ("file_data", "url", "data"):
        value = obj.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise invalid(f"'{param}.{key}' must be a non-empty string", f"{param}.{key}", "invalid_value")
        if key == "url" and not value.strip().lower().startswith(("http://", "https://")):
            raise invalid(f"'{param}.url' must be an http(s) URL", f"{param}.url", "invalid_url")
        return Attachment("file", value.strip(), f"{param}.{key}", filename)
    if obj.get("file_id") is not None:
        raise invalid("file ids are not supported; send the file as 'file_data'", f"{param}.file_id",
                      "unsupported_value")
    raise invalid(f"'{param}' needs 'file_data' (base64 or a data: URI) or 'url'", param, "missing_file_data")
