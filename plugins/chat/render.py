"""OpenAI's chat-completion shapes: the response object, stream chunks and their SSE framing.

One :class:`Completion` per request fixes the ``id`` and ``created`` every chunk
repeats, as OpenAI's stream does; it is the chat API's :class:`Surface`. A tool call
streams as two chunks: its ``id`` and ``name`` with empty ``arguments``, then the
arguments, which clients append.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from grok2api.api import ApiError, random_hex
from grok2api_plugins.chat.answer import Delta
from grok2api_plugins.chat.surface import Outcome
from grok2api_plugins.chat.tools import ToolCall
from grok2api_plugins.chat.usage import PromptTokens, usage

DONE = b"data: [DONE]\n\n"


def sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def error_event(error: ApiError) -> bytes:
    """The stream's last word when it fails after it began: an error object, then ``[DONE]``."""
    return sse(error.body()) + DONE


def image_markdown(links: list[tuple[str, str]], content_so_far: str) -> str:
    """Generated images as markdown, on lines of their own after the answer text."""
    if not links:
        return ""
    lead = "\n" if content_so_far and not content_so_far.endswith("\n") else ""
    return lead + "".join(f"![{alt}]({url})\n" for alt, url in links)


class Completion:
    def __init__(self, model: str, *, include_usage: bool = False) -> None:
        self.id = f"chatcmpl-{random_hex()}"
        self.created = int(time.time())
        self.model = model
        self.system_fingerprint = ""
        self.include_usage = include_usage  # then OpenAI sends "usage": null on every chunk but the last
        self._calls = 0

    def _head(self, obj: str) -> dict[str, Any]:
        head: dict[str, Any] = {"id": self.id, "object": obj, "created": self.created, "model": self.model}
        if self.system_fingerprint:
            head["system_fingerprint"] = self.system_fingerprint
        return head

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        body = self._head("chat.completion.chunk")
        body["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        if self.include_usage:
            body["usage"] = None
        return sse(body)

    def usage_chunk(self, usage: dict[str, Any]) -> bytes:
        body = self._head("chat.completion.chunk")
        body["choices"] = []
        body["usage"] = usage
        return sse(body)

    def opening(self, prompt: PromptTokens) -> bytes:
        return self.chunk({"role": "assistant", "content": ""})

    def delta(self, delta: Delta, model_hash: str) -> bytes:
        self.system_fingerprint = model_hash
        piece = {"reasoning_content": delta.reasoning} if delta.reasoning else {}
        if delta.content:
            piece["content"] = delta.content
        out = self.chunk(piece) if piece else b""
        for call in delta.calls:
            head = {"index": self._calls, "id": call.id, "type": "function",
                    "function": {"name": call.name, "arguments": ""}}
            out += self.chunk({"tool_calls": [head]})
            out += self.chunk({"tool_calls": [{"index": self._calls, "function": {"arguments": call.arguments}}]})
            self._calls += 1
        return out

    def closing(self, outcome: Outcome) -> bytes:
        usage_chunk = self.usage_chunk(self._usage(outcome)) if self.include_usage else b""
        return self.chunk({}, _finish(outcome)) + usage_chunk + DONE

    def failure(self, error: ApiError) -> bytes:
        return error_event(error)

    def body(self, outcome: Outcome) -> dict[str, Any]:
        self.system_fingerprint = outcome.model_hash
        message: dict[str, Any] = {"role": "assistant", "content": outcome.content, "refusal": None,
                                   "annotations": []}
        if outcome.calls:  # the text around calls, if any, without the lines the calls stood on
            message["content"] = outcome.content.strip() or None
            message["tool_calls"] = [_call(c) for c in outcome.calls]
        if outcome.reasoning:
            message["reasoning_content"] = outcome.reasoning
        body = self._head("chat.completion")
        body["choices"] = [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(outcome)}]
        body["usage"] = self._usage(outcome)
        return body

    @staticmethod
    def _usage(outcome: Outcome) -> dict[str, Any]:
        return usage(outcome.prompt, outcome.reasoning, outcome.content, outcome.call_tokens)


def _finish(outcome: Outcome) -> str:
    return "tool_calls" if outcome.calls else "length" if outcome.truncated else "stop"


def _call(call: ToolCall) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
