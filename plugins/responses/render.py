"""OpenAI's Responses shapes: the ``response`` object and its event stream.

The stream: ``response.created`` and ``response.in_progress``, then one output item at
a time — a ``reasoning`` item whose summary is Grok's thinking, a ``message`` with one
``output_text`` part, ``function_call`` items — each added, given its deltas and done
before the next; ``response.completed`` carries the whole response. A failure after
the start is ``response.failed`` with the error.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from grok2api.api import ApiError, random_hex
from grok2api_plugins.chat.answer import Delta
from grok2api_plugins.chat.surface import Outcome
from grok2api_plugins.chat.tools import ToolCall
from grok2api_plugins.chat.usage import PromptTokens
from grok2api_plugins.responses.request import ResponsesInput


def new_id(prefix: str) -> str:
    return f"{prefix}_{random_hex()[:24]}"


def function_call(call: ToolCall, status: str = "completed") -> dict[str, Any]:
    return {"type": "function_call", "id": new_id("fc"), "call_id": call.id, "name": call.name,
            "arguments": call.arguments, "status": status}


class ResponseSurface:
    """One answer as a Responses ``response``; :attr:`completed` is the finished object
    (``incomplete`` when it stopped at ``max_output_tokens``)."""

    def __init__(self, model: str, request: ResponsesInput) -> None:
        self.id = new_id("resp")
        self.created = int(time.time())
        self.model = model
        self.request = request
        self.output: list[dict[str, Any]] = []  # the items streamed so far
        self._open: dict[str, Any] | None = None
        self._sequence = 0
        self.completed: dict[str, Any] | None = None

    def snapshot(self, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None = None,
                 error: dict[str, Any] | None = None) -> dict[str, Any]:
        request = self.request
        reasoning = request.reasoning or {}
        response = {
            "id": self.id, "object": "response", "created_at": self.created, "status": status,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error, "instructions": request.instructions,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "max_output_tokens": request.max_output_tokens, "model": self.model, "output": output,
            "parallel_tool_calls": request.toolset.parallel, "previous_response_id": request.previous_response_id,
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "store": request.store, "temperature": 1.0, "text": {"format": {"type": "text"}},
            "tool_choice": request.tool_choice, "tools": request.tools, "top_p": 1.0, "truncation": "disabled",
            "metadata": request.metadata,
            "output_text": "".join(part["text"] for item in output if item["type"] == "message"
                                   for part in item["content"]),
        }
        if usage is not None:  # the schema has no null usage: an unfinished response has none
            response["usage"] = usage
        return response

    def _event(self, kind: str, **payload: Any) -> bytes:
        body = {"type": kind, "sequence_number": self._sequence, **payload}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"

    def opening(self, prompt: PromptTokens) -> bytes:
        start = self.snapshot("in_progress", [])
        return self._event("response.created", response=start) + self._event("response.in_progress", response=start)

    def _add(self, item: dict[str, Any]) -> bytes:
        out = self._close()
        self.output.append(item)
        self._open = item
        return out + self._event("response.output_item.added", output_index=len(self.output) - 1, item=item)

    def _where(self) -> dict[str, Any]:
        assert self._open is not None
        return {"item_id": self._open["id"], "output_index": len(self.output) - 1}

    def _close(self) -> bytes:
        item, out = self._open, b""
        if item is None:
            return out
        if item["type"] == "reasoning":
            part = item["summary"][0]
            out += self._event("response.reasoning_summary_text.done", **self._where(), summary_index=0,
                               text=part["text"])
            out += self._event("response.reasoning_summary_part.done", **self._where(), summary_index=0, part=part)
        elif item["type"] == "message":
            part = item["content"][0]
            out += self._event("response.output_text.done", **self._where(), content_index=0, text=part["text"],
                               logprobs=[])
            out += self._event("response.content_part.done", **self._where(), content_index=0, part=part)
        item["status"] = "completed"
        out += self._event("response.output_item.done", output_index=len(self.output) - 1, item=item)
        self._open = None
        return out

    def delta(self, delta: Delta, model_hash: str) -> bytes:
        out = b""
        if delta.reasoning:
            if self._open is None or self._open["type"] != "reasoning":
                out += self._add({"type": "reasoning", "id": new_id("rs"), "summary": []})
                part: dict[str, Any] = {"type": "summary_text", "text": ""}
                out += self._event("response.reasoning_summary_part.added", **self._where(), summary_index=0,
                                   part=dict(part))
                self.output[-1]["summary"].append(part)
            self.output[-1]["summary"][0]["text"] += delta.reasoning
            out += self._event("response.reasoning_summary_text.delta", **self._where(), summary_index=0,
                               delta=delta.reasoning)
        if delta.content:
            if self._open is None or self._open["type"] != "message":
                out += self._add({"type": "message", "id": new_id("msg"), "status": "in_progress",
                                  "role": "assistant", "content": []})
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                out += self._event("response.content_part.added", **self._where(), content_index=0, part=dict(part))
                self.output[-1]["content"].append(part)
            self.output[-1]["content"][0]["text"] += delta.content
            out += self._event("response.output_text.delta", **self._where(), content_index=0, delta=delta.content,
                               logprobs=[])
        for call in delta.calls:
            item = function_call(call, "in_progress")
            out += self._add({**item, "arguments": ""})
            self._open = None  # a call is whole already: its events end here
            self.output[-1]["arguments"] = call.arguments
            self.output[-1]["status"] = "completed"
            where = {"item_id": item["id"], "output_index": len(self.output) - 1}
            out += self._event("response.function_call_arguments.delta", **where, delta=call.arguments)
            out += self._event("response.function_call_arguments.done", **where, name=call.name,
                               arguments=call.arguments)
            out += self._event("response.output_item.done", output_index=len(self.output) - 1, item=self.output[-1])
        return out

    def finish(self, outcome: Outcome) -> dict[str, Any]:
        """The completed response: the streamed items, or (not streamed) items made from the outcome."""
        output = self.output
        if not output:
            if outcome.reasoning:
                output.append({"type": "reasoning", "id": new_id("rs"),
                               "summary": [{"type": "summary_text", "text": outcome.reasoning}]})
            text = outcome.content.strip() if outcome.calls else outcome.content
            if text:
                output.append({"type": "message", "id": new_id("msg"), "status": "completed", "role": "assistant",
                               "content": [{"type": "output_text", "text": text, "annotations": [],
                                            "logprobs": []}]})
            output += [function_call(call) for call in outcome.calls]
        usage = {"input_tokens": outcome.prompt.total,
                 "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                 "output_tokens": outcome.output_tokens,
                 "output_tokens_details": {"reasoning_tokens": outcome.reasoning_tokens},
                 "total_tokens": outcome.prompt.total + outcome.output_tokens}
        self.completed = self.snapshot("incomplete" if outcome.truncated else "completed", output, usage)
        return self.completed

    def closing(self, outcome: Outcome) -> bytes:
        out = self._close()
        finished = self.finish(outcome)
        return out + self._event(f"response.{finished['status']}", response=finished)

    def failure(self, error: ApiError) -> bytes:
        failed = self.snapshot("failed", self.output, error={"code": "server_error", "message": error.message})
        return self._event("response.failed", response=failed)

    def body(self, outcome: Outcome) -> dict[str, Any]:
        return self.finish(outcome)
