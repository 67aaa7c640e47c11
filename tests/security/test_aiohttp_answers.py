"""Item 3 of issue 14: what aiohttp answers itself.

An unknown ``Expect`` passes the app's ``on_response_prepare`` signal, so it leaves as an
OpenAI error. Bytes the HTTP parser refuses never become a request the app sees: aiohttp
answers them with its own ``400`` in text and closes the connection. These tests pin that
documented behaviour (docs/security.md), so an aiohttp upgrade that changes it is noticed.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from grok2api import hookimpl
from grok2api.testing.openai_schema import validate
from grok2api.web.errors import openai_error_body

from .support import API_KEY, RawResponse, exchange, request_bytes

AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def _client(gateway, make_settings) -> TestClient:
    client: TestClient = await gateway("storage_local", "chat", settings=make_settings(app={"api_key": API_KEY}))
    return client


async def _send(client: TestClient, data: bytes) -> RawResponse:
    assert client.port is not None
    return await asyncio.to_thread(exchange, client.port, data)


async def test_unknown_expect_is_an_openai_error(gateway, make_settings) -> None:
    client = await _client(gateway, make_settings)
    answer = await _send(client, request_bytes("POST", "/v1/chat/completions", {**AUTH, "Expect": "garbage"}, b"{}"))
    assert answer.status == 417 and answer.headers["content-type"].startswith("application/json")
    validate("ErrorResponse", answer.json())
    assert answer.json()["error"]["param"] == "Expect" and b"garbage" not in answer.body


@pytest.mark.parametrize(("name", "data"), [
    ("oversized header", request_bytes("GET", "/v1/models", {**AUTH, "X-Big": "b" * 9000})),
    ("too many headers", request_bytes("GET", "/v1/models", {**AUTH, **{f"X-H{i}": "1" for i in range(200)}})),
    ("bad method", request_bytes("G@T", "/v1/models", AUTH)),
    ("non-ASCII path", request_bytes("GET", "/v1/m\u00e9dels", AUTH)),
    ("Content-Length with Transfer-Encoding",
     request_bytes("POST", "/v1/chat/completions", {**AUTH, "Transfer-Encoding": "chunked"}, b"0\r\n\r\n")),
    ("control byte in a header", request_bytes("GET", "/v1/models", AUTH, raw_headers=b"X-Other: a\x01b\r\n")),
])
async def test_parser_refusals_are_aiohttps_own_400(gateway, make_settings, name: str, data: bytes) -> None:
    """Not JSON (aiohttp offers no public hook for them), never a 5xx, never another header quoted."""
    client = await _client(gateway, make_settings)
    answer = await _send(client, data)
    assert answer.raw.startswith(b"HTTP/1.0 400 Bad Request\r\n"), name
    assert answer.headers["content-type"].startswith("text/plain")
    assert API_KEY.encode() not in answer.raw


@pytest.mark.parametrize(("status", "content_type", "code"), [
    (500, "text/plain", "internal_error"), (500, "text/html", "internal_error"), (504, "text/plain", "timeout"),
    (417, "text/plain", "expectation_failed"), (400, "text/plain", None),
])
def test_aiohttps_text_errors_become_openai_errors(status: int, content_type: str, code: str | None) -> None:
    """What aiohttp's protocol handler writes for an error raised outside the error middleware."""
    response = web.Response(status=status, text="500 Internal Server Error\n\nServer got itself in trouble",
                            content_type=content_type)
    openai_error_body(response)
    assert response.content_type == "application/json"
    assert isinstance(response.body, bytes) and response.headers["Content-Length"] == str(len(response.body))
    body = orjson.loads(response.body)
    validate("ErrorResponse", body)
    assert body["error"]["code"] == code and "trouble" not in body["error"]["message"]


def test_html_of_the_app_below_500_is_left_alone() -> None:
    response = web.Response(status=404, text="<p>no such page</p>", content_type="text/html")
    openai_error_body(response)
    assert response.content_type == "text/html"


class NoAnswerPlugin:
    """A route that returns nothing: the request-id middleware, outside the error
    middleware, fails on it and aiohttp's protocol handler answers."""

    plugin_name = "no-answer"

    @hookimpl
    def grok2api_add_routes(self, app: web.Application) -> list[web.RouteDef]:
        async def nothing(request: web.Request) -> web.Response:
            return None  # type: ignore[return-value]

        return [web.get("/v1/nothing", nothing)]


async def test_a_crash_outside_the_error_middleware_is_an_openai_error(gateway, make_settings) -> None:
    client = await gateway("storage_local", NoAnswerPlugin(), settings=make_settings(app={"api_key": API_KEY}))
    for accept in ("*/*", "text/html"):
        resp = await client.get("/v1/nothing", headers={**AUTH, "Accept": accept})
        assert resp.status == 500 and resp.content_type == "application/json"
        body = await resp.json()
        validate("ErrorResponse", body)
        assert body["error"]["code"] == "internal_error"
