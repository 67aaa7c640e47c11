"""Item 5 of issue 14: a client that sends its headers or body too slowly is let go after
``server.header_timeout_sec`` / ``server.body_timeout_sec``; a long streamed answer is not.

Raw sockets on loopback against a real ``grok2api serve`` with one-second limits.
"""

from __future__ import annotations

import asyncio
import socket
import time

import orjson

from grok2api.testing.fake_grok import FakeGrok

from .conftest import StartServed
from .support import API_KEY, exchange, parse_response, request_bytes

LIMITS = {"server__header_timeout_sec": "1", "server__body_timeout_sec": "1"}


def _held_for(port: int, data: bytes) -> tuple[float, bytes]:
    """Send ``data``, then wait: how long until the gateway closes, and what it said."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(data)
        started, received = time.monotonic(), b""
        while chunk := sock.recv(65536):
            received += chunk
        return time.monotonic() - started, received


async def test_headers_that_never_end_are_cut(served: StartServed) -> None:
    child = await served(managed_key=False, account=False, **LIMITS)
    held, received = await asyncio.to_thread(_held_for, child.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    assert 0.5 < held < 5 and received == b""


async def test_a_body_that_never_arrives_is_a_408(served: StartServed) -> None:
    """Answered when the body timeout ends; closed at most as long again later (aiohttp
    reads and drops the rest of the body for that long, so the client sees the answer)."""
    child = await served(managed_key=False, account=False, **LIMITS)
    head = request_bytes("POST", "/v1/chat/completions", {"Authorization": f"Bearer {API_KEY}",
                                                          "Content-Type": "application/json"})
    partial = head.replace(b"Content-Length: 0", b"Content-Length: 1000") + b'{"model": "grok-4", '
    held, received = await asyncio.to_thread(_held_for, child.port, partial)
    answer = parse_response(received)
    assert 0.5 < held < 6 and answer.status == 408
    assert answer.json()["error"] == {"message": "The request body did not arrive within 1 s", "param": "body",
                                      "type": "invalid_request_error", "code": "body_timeout"}


async def test_a_long_stream_is_not_cut(served: StartServed, fake_grok: FakeGrok) -> None:
    child = await served(managed_key=False, **LIMITS)
    fake_grok.frame_delay = 0.4
    body = orjson.dumps({"model": "grok-4", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
    data = request_bytes("POST", "/v1/chat/completions", {"Authorization": f"Bearer {API_KEY}",
                                                          "Content-Type": "application/json"}, body)
    started = time.monotonic()
    answer = await asyncio.to_thread(exchange, child.port, data, 30)
    assert time.monotonic() - started > 2.5  # well past both limits
    assert answer.status == 200 and answer.body.rstrip().endswith(b"data: [DONE]")
