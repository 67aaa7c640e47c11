"""A gateway on a real loopback port in front of the fake Grok, and openai SDK clients
whose every response body is checked against OpenAI's schemas."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
import openai
import orjson
from aiohttp import web
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageFunctionToolCall

from grok2api.api import POOL, Account
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.openai_schema import validate

API_KEY = "sk-chat-tests-0123456789"
FAST_TIMEOUTS = {"connect_timeout": 1.0, "first_byte_timeout": 2.0, "idle_timeout": 2.0, "timeout": 10.0}


def check_body(path: str, status: int, content_type: str, body: bytes) -> list[str]:
    """Validate one ``/v1`` response; returns the schema names checked (raises on a mismatch)."""
    if status >= 400:
        validate("ErrorResponse", orjson.loads(body))
        return ["ErrorResponse"]
    if path.startswith("/v1/responses"):
        return check_responses(path, content_type, body)
    if content_type.startswith("text/event-stream"):
        return check_sse(body)
    if path.endswith("/chat/completions"):
        validate("CreateChatCompletionResponse", orjson.loads(body))
        return ["CreateChatCompletionResponse"]
    if path.endswith("/models"):
        validate("ListModelsResponse", orjson.loads(body))
        return ["ListModelsResponse"]
    if path.startswith("/v1/models/"):
        validate("Model", orjson.loads(body))
        return ["Model"]
    return []


def check_sse(body: bytes) -> list[str]:
    """Every ``data:`` event is a chunk (or an error object), one ``id`` throughout, ``[DONE]`` last."""
    events = [line[5:].strip() for line in body.split(b"\n") if line.startswith(b"data:")]
    assert events and events[-1] == b"[DONE]", f"stream did not end with [DONE]: {body[-200:]!r}"
    checked, ids = [], set()
    for raw in events[:-1]:
        data = orjson.loads(raw)
        if "error" in data:
            validate("ErrorResponse", data)
            checked.append("ErrorResponse")
        else:
            validate("CreateChatCompletionStreamResponse", data)
            ids.add(data["id"])
            checked.append("CreateChatCompletionStreamResponse")
    assert len(ids) <= 1, f"chunk ids differ: {ids}"
    return checked


RESPONSE_EVENTS = {
    "response.created": "ResponseCreatedEvent", "response.in_progress": "ResponseInProgressEvent",
    "response.completed": "ResponseCompletedEvent", "response.failed": "ResponseFailedEvent",
    "response.incomplete": "ResponseIncompleteEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent", "response.output_text.done": "ResponseTextDoneEvent",
    "response.reasoning_summary_part.added": "ResponseReasoningSummaryPartAddedEvent",
    "response.reasoning_summary_part.done": "ResponseReasoningSummaryPartDoneEvent",
    "response.reasoning_summary_text.delta": "ResponseReasoningSummaryTextDeltaEvent",
    "response.reasoning_summary_text.done": "ResponseReasoningSummaryTextDoneEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
}


def check_responses(path: str, content_type: str, body: bytes) -> list[str]:
    """Responses API bodies: each stream event, a response, an input-item list (a deletion has no schema)."""
    if content_type.startswith("text/event-stream"):
        events = [orjson.loads(line[5:]) for line in body.split(b"\n") if line.startswith(b"data:")]
        assert events and events[-1]["type"] in ("response.completed", "response.failed", "response.incomplete")
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
        for data in events:
            validate(RESPONSE_EVENTS[data["type"]], data)  # the event's own schema names what is wrong
            validate("ResponseStreamEvent", data)
        return ["ResponseStreamEvent"] * len(events)
    data = orjson.loads(body)
    name = "ResponseItemList" if path.endswith("/input_items") else "Response"
    if data.get("object") == "response.deleted":
        assert data["deleted"] is True
        return []
    validate(name, data)
    return [name]


@dataclass
class Bodies:
    """What the checking transports saw: (path, status, schemas) per response."""

    seen: list[tuple[str, int, list[str]]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def check(self, request: httpx.Request, response: httpx.Response, body: bytes) -> list[str]:
        """The schemas ``body`` was checked against (raises when it fits none); plugins'
        tests override this for their own endpoints."""
        return check_body(request.url.path, response.status_code, response.headers.get("content-type", ""), body)

    def record(self, request: httpx.Request, response: httpx.Response, body: bytes) -> None:
        path = request.url.path
        try:
            schemas = self.check(request, response, body)
        except Exception as exc:  # collected: the SDK would swallow it inside close()
            self.failures.append(f"{request.method} {path} -> {response.status_code}: {exc}\n{body[:500]!r}")
            return
        self.seen.append((path, response.status_code, schemas))


class _Recorded(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, stream: Any, on_close: Any) -> None:
        self._stream, self._on_close = stream, on_close
        self._parts: list[bytes] = []
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        for part in self._stream:
            self._parts.append(part)
            yield part

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            self._parts.append(part)
            yield part

    def _done(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close(b"".join(self._parts))

    def close(self) -> None:
        self._stream.close()
        self._done()

    async def aclose(self) -> None:
        await self._stream.aclose()
        self._done()


def _wrap(bodies: Bodies, request: httpx.Request, response: httpx.Response) -> httpx.Response:
    holder: dict[str, httpx.Response] = {}
    stream = _Recorded(response.stream, lambda body: bodies.record(request, holder["response"], body))
    holder["response"] = httpx.Response(response.status_code, headers=response.headers, stream=stream,
                                        request=request, extensions=response.extensions)
    return holder["response"]


class CheckingTransport(httpx.HTTPTransport):
    def __init__(self, bodies: Bodies) -> None:
        super().__init__()
        self.bodies = bodies

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return _wrap(self.bodies, request, super().handle_request(request))


class AsyncCheckingTransport(httpx.AsyncHTTPTransport):
    def __init__(self, bodies: Bodies) -> None:
        super().__init__()
        self.bodies = bodies

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return _wrap(self.bodies, request, await super().handle_async_request(request))


def content_of(answer: ChatCompletion) -> str:
    """The text of an answer's first choice (a test fails on none)."""
    content = answer.choices[0].message.content
    assert content is not None, answer
    return content


def tool_calls_of(answer: ChatCompletion) -> list[ChatCompletionMessageFunctionToolCall]:
    """The function calls of an answer's first choice (a test fails on none, or on a custom tool's call)."""
    calls = answer.choices[0].message.tool_calls
    assert calls is not None, answer
    functions = [call for call in calls if isinstance(call, ChatCompletionMessageFunctionToolCall)]
    assert functions == calls, calls
    return functions


def usage_of(answer: ChatCompletion | ChatCompletionChunk) -> CompletionUsage:
    """The usage of an answer or of a stream's last chunk (a test fails on none)."""
    assert answer.usage is not None, answer
    return answer.usage


def error_of(failure: openai.APIError) -> dict[str, Any]:
    """The OpenAI error object of a failed request, as the SDK read it."""
    assert isinstance(failure.body, dict), failure.body
    return failure.body


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class Live:
    """A started gateway: its URL, app, the fake behind it and the accounts in its pool."""

    url: str
    app: web.Application
    fake: FakeGrok
    tokens: list[str]
    bodies: Bodies

    def client(self, **options: Any) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=API_KEY, max_retries=0, timeout=20,
                             http_client=httpx.Client(transport=CheckingTransport(self.bodies)), **options)

    def aclient(self, **options: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.url + "/v1", api_key=API_KEY, max_retries=0, timeout=20,
                                  http_client=httpx.AsyncClient(transport=AsyncCheckingTransport(self.bodies)),
                                  **options)

    def account(self, token: str) -> Account:
        account = self.app[POOL].get(token)
        assert account is not None
        return account

    def inflight(self) -> dict[str, int]:
        return {token: self.account(token).inflight for token in self.tokens}

    def chats(self) -> list[Any]:
        return self.fake.requests_to("chat")
