"""Anthropic's shapes: the ``Message`` body, its event stream and its error envelope.

The stream opens with ``message_start`` (with the prompt's real ``input_tokens``),
then one content block at a time — ``thinking``, ``text``, ``tool_use`` — each
started, given its deltas and stopped before the next starts, so the SDK's
accumulator can index them; ``message_delta`` carries the ``stop_reason`` and the
cumulative usage, ``message_stop`` ends it. A failure after the start is one
``error`` event, and no ``message_stop``.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
from aiohttp import web

from grok2api.api import ApiError, random_hex
from grok2api_plugins.chat.answer import Delta
from grok2api_plugins.chat.surface import Outcome
from grok2api_plugins.chat.tools import ToolCall
from grok2api_plugins.chat.usage import PromptTokens

#: Anthropic's ``error.type`` by HTTP status (other 4xx are ``invalid_request_error``, other 5xx ``api_error``)
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 409: "conflict_error", 413: "request_too_large",
               429: "rate_limit_error", 500: "api_error", 504: "timeout_error", 529: "overloaded_error"}


def error_body(error: ApiError) -> dict[str, Any]:
    kind = ERROR_TYPES.get(error.status) or ("invalid_request_error" if error.status < 500 else "api_error")
    return {"type": "error", "error": {"type": kind, "message": error.message}}


def render_error(error: ApiError) -> web.StreamResponse:
    """Every error of the Messages routes, authentication included, in Anthropic's envelope."""
    return web.Response(status=error.status, body=orjson.dumps(error_body(error)), content_type="application/json",
                        headers=error.headers)


def event(kind: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **payload}) + b"\n\n"


def signature(thinking: str) -> str:
    """An opaque signature for a thinking block (clients send it back; nothing here checks it)."""
    return base64.b64encode(hashlib.sha256(thinking.encode()).digest()).decode()


def tool_use(call: ToolCall) -> dict[str, Any]:
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": orjson.loads(call.arguments)}


class MessageSurface:
    """One answer as an Anthropic ``Message``, streamed or whole."""

    def __init__(self, model: str) -> None:
        self.id = f"msg_{random_hex()[:24]}"
        self.model = model
        self._index = -1
        self._open: str | None = None  # the kind of the block being streamed
        self._thinking = ""

    def _usage(self, outcome: Outcome) -> dict[str, Any]:
        return {"input_tokens": outcome.prompt.total, "output_tokens": max(1, outcome.output_tokens),
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}

    def opening(self, prompt: PromptTokens) -> bytes:
        message: dict[str, Any] = {
            "id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": prompt.total, "output_tokens": 1, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0}}
        return event("message_start", {"message": message})

    def _start(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._stop()
        self._index += 1
        self._open = kind
        return out + event("content_block_start", {"index": self._index, "content_block": block})

    def _stop(self) -> bytes:
        if self._open is None:
            return b""
        out = b""
        if self._open == "thinking":
            out = self._delta({"type": "signature_delta", "signature": signature(self._thinking)})
            self._thinking = ""
        self._open = None
        return out + event("content_block_stop", {"index": self._index})

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return event("content_block_delta", {"index": self._index, "delta": delta})

    def delta(self, delta: Delta, model_hash: str) -> bytes:
        out = b""
        if delta.reasoning:
            if self._open != "thinking":
                out += self._start("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            self._thinking += delta.reasoning
            out += self._delta({"type": "thinking_delta", "thinking": delta.reasoning})
        if delta.content:
            if self._open != "text":
                out += self._start("text", {"type": "text", "text": ""})
            out += self._delta({"type": "text_delta", "text": delta.content})
        for call in delta.calls:
            out += self._start("tool_use", {"type": "tool_use", "id": call.id, "name": call.name, "input": {}})
            out += self._delta({"type": "input_json_delta", "partial_json": ""})
            out += self._delta({"type": "input_json_delta", "partial_json": call.arguments})
        return out

    def closing(self, outcome: Outcome) -> bytes:
        usage = self._usage(outcome)
        return self._stop() + event("message_delta", {
            "delta": {"stop_reason": _stop_reason(outcome), "stop_sequence": None},
            "usage": {"input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"]},
        }) + event("message_stop", {})

    def failure(self, error: ApiError) -> bytes:
        return event("error", {"error": error_body(error)["error"]})

    def body(self, outcome: Outcome) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if outcome.reasoning:
            content.append({"type": "thinking", "thinking": outcome.reasoning,
                            "signature": signature(outcome.reasoning)})
        text = outcome.content.strip() if outcome.calls else outcome.content
        if text:
            content.append({"type": "text", "text": text, "citations": None})
        content += [tool_use(call) for call in outcome.calls]
        return {"id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": content,
                "stop_reason": _stop_reason(outcome), "stop_sequence": None, "usage": self._usage(outcome)}


def _stop_reason(outcome: Outcome) -> str:
    return "tool_use" if outcome.calls else "max_tokens" if outcome.truncated else "end_turn"
