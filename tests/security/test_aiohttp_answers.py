"""Item 3 of issue 14: what aiohttp answers itself.

An unknown ``Expect`` passes the app's ``on_response_prepare`` signal, so it leaves as an
OpenAI error. Bytes the HTTP parser refuses never become a request the app sees: aiohttp
answers them with its own ``400`` in text and closes the connection. These tests pin that
documented behaviour (docs/security.md), so an aiohttp upgrade that changes it is noticed.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient

from grok2api.testing.openai_schema import validate

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
