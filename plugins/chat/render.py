"""OpenAI's chat-completion shapes: the response object, stream chunks and their SSE framing.

One :class:`Completion` per request fixes the ``id`` and ``created`` every chunk
repeats, as OpenAI's stream does.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from grok2api.api import ApiError, random_hex

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

    def response(self, content: str, reasoning: str | None, usage: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None, "annotations": []}
        if reasoning:
            message["reasoning_content"] = reasoning
        body = self._head("chat.completion")
        body["choices"] = [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}]
        body["usage"] = usage
        return body
