"""The image tests' gateway handle: openai SDK clients whose every ``/v1`` answer is
checked against OpenAI's image schemas (the checking transports are the chat tests')."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import openai
import orjson
from aiohttp import web

from grok2api.api import KEYS, POOL, Account
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.openai_schema import validate
from grok2api_plugins.chat.tests.support import AsyncCheckingTransport, Bodies, CheckingTransport

API_KEY = "sk-image-tests-0123456789"
_STREAM_SCHEMAS = {
    "image_generation.partial_image": "ImageGenPartialImageEvent",
    "image_generation.completed": "ImageGenCompletedEvent",
    "image_edit.partial_image": "ImageEditPartialImageEvent",
    "image_edit.completed": "ImageEditCompletedEvent",
    "error": "ErrorResponse",
}


def sse_events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """``(event name, data)`` of every event of an SSE body."""
    events = []
    for block in body.split(b"\n\n"):
        lines = dict(line.split(b": ", 1) for line in block.split(b"\n") if b": " in line)
        if lines:
            events.append((lines[b"event"].decode(), orjson.loads(lines[b"data"])))
    return events


def check_image_body(path: str, status: int, content_type: str, body: bytes) -> list[str]:
    """Validate one answer of the image endpoints; returns the schema names checked."""
    if status >= 400:
        validate("ErrorResponse", orjson.loads(body))
        return ["ErrorResponse"]
    if content_type.startswith("text/event-stream"):
        checked = []
        events = sse_events(body)
        assert events, "an empty image stream"
        for position, (name, data) in enumerate(events):
            schema = _STREAM_SCHEMAS[name]
            assert name == "error" or data["type"] == name, (name, data["type"])
            assert name != "error" or position == len(events) - 1, "an error event must end the stream"
            validate(schema, data)
            checked.append(schema)
        return checked
    if path.startswith("/v1/images/") and path != "/v1/images/method":
        data = orjson.loads(body)
        validate("ImagesResponse", data)
        for item in data["data"]:
            encoded = item.get("b64_json") or item.get("base64")
            assert (encoded is None) != ("url" not in item), item.keys()
            if encoded is not None:
                base64.b64decode(encoded, validate=True)
        return ["ImagesResponse"]
    return []


class ImageBodies(Bodies):
    def check(self, request: httpx.Request, response: httpx.Response, body: bytes) -> list[str]:
        return check_image_body(request.url.path, response.status_code, response.headers.get("content-type", ""),
                                body)


@dataclass
class Live:
    """A started gateway: its URL, app, the fake behind it and the accounts in its pool."""

    url: str
    app: web.Application
    fake: FakeGrok
    tokens: list[str]
    bodies: ImageBodies

    # ``Any``: the SDK's typed overloads do not take the tests' keyword dicts, nor Grok's extra fields
    def client(self, **options: Any) -> Any:
        return openai.OpenAI(**{"base_url": self.url + "/v1", "api_key": API_KEY, "max_retries": 0, "timeout": 20,
                                "http_client": httpx.Client(transport=CheckingTransport(self.bodies)), **options})

    def aclient(self, **options: Any) -> Any:
        return openai.AsyncOpenAI(**{
            "base_url": self.url + "/v1", "api_key": API_KEY, "max_retries": 0, "timeout": 20,
            "http_client": httpx.AsyncClient(transport=AsyncCheckingTransport(self.bodies)), **options})

    def account(self, token: str) -> Account:
        account = self.app[POOL].get(token)
        assert account is not None
        return account

    def inflight(self) -> dict[str, int]:
        return {token: self.account(token).inflight for token in self.tokens}


def is_picture(data: bytes) -> bool:
    return data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"))


async def picture_bytes(item: Any) -> bytes:
    """The picture an ``Image`` of an answer carries: fetched from its link or decoded."""
    extra = item.model_extra or {}
    if item.url:
        async with httpx.AsyncClient() as http:
            served = await http.get(item.url)
        assert served.status_code == 200 and served.headers["content-type"].startswith("image/")
        return served.content
    return base64.b64decode(item.b64_json or extra["base64"])


async def key_usage(live: Live) -> int:
    (row,) = await live.app[KEYS].list_rows()
    return int(row["usage_today"]["image_used"])
