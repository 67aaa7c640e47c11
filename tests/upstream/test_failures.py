"""Every failure class, for every operation, produced by the fake over real sockets."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from grok2api.config.settings import Settings
from grok2api.testing.fake_grok import FakeGrok
from grok2api.upstream import (
    ChatRequest,
    Failure,
    GrokClient,
    InStreamError,
    ModelResponse,
    TextDelta,
    UpstreamError,
)
from grok2api.upstream.classify import from_status, from_stream_error, retry_after

from .support import set_grok

Operation = Callable[[GrokClient, Path], Awaitable[Any]]


async def drain(stream: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in stream]


def chat(request: ChatRequest | None = None, token: str = "tok") -> Operation:
    return lambda client, out: drain(client.chat(token, request or ChatRequest("grok-3", "MODEL_MODE_FAST", "hi")))


OPERATIONS: dict[str, Operation] = {
    "chat": chat(),
    "upload": lambda c, out: c.upload_file("tok", "a.txt", "text/plain", b"x"),
    "rate_limits": lambda c, out: c.rate_limits("tok", "grok-3"),
    "list_assets": lambda c, out: c.list_assets("tok"),
    "delete_asset": lambda c, out: c.delete_asset("tok", "any"),
    "asset": lambda c, out: c.download_asset("tok", "users/u/f/content", out / "f", max_bytes=9, kind="image"),
    "media_post": lambda c, out: c.create_media_post("tok", media_type="video", prompt="p"),
    "upscale": lambda c, out: c.upscale_video("tok", "v"),
    "imagine": lambda c, out: drain(c.imagine("tok", "p")),
}

ANSWER_FAULTS: dict[str, tuple[dict[str, Any], Failure, int | None]] = {
    "invalid_credentials": ({}, Failure.INVALID_CREDENTIALS, 401),
    "blocked": ({}, Failure.BLOCKED, 403),
    "anti_bot": ({}, Failure.ANTI_BOT, 403),
    "cloudflare": ({}, Failure.CLOUDFLARE, 403),
    "cloudflare_empty": ({}, Failure.CLOUDFLARE, 403),
    "moderated": ({}, Failure.MODERATED, 403),
    "rate_limited": ({"retry_after": 12}, Failure.RATE_LIMITED, 429),
    "server_error": ({"status": 502}, Failure.UPSTREAM_5XX, 502),
    "disconnect": ({}, Failure.NETWORK_AFTER_SEND, None),
}
#: curl does not hand over the body of a refused WebSocket upgrade, so a JSON 403 there
#: can only be told apart by status and headers: it counts as an unpenalised rejection
WS_HEADERS_ONLY = {"blocked": Failure.ANTI_BOT, "moderated": Failure.ANTI_BOT}


async def fails(operation: Awaitable[Any]) -> UpstreamError:
    with pytest.raises(UpstreamError) as caught:
        await operation
    return caught.value


async def failed_chat(client: GrokClient, prompt: str) -> tuple[list[Any], UpstreamError]:
    """The events a failing chat yielded, and the error it raised after them."""
    events: list[Any] = []
    with pytest.raises(UpstreamError) as caught:
        async for event in client.chat("tok", ChatRequest("grok-3", "MODEL_MODE_FAST", prompt)):
            events.append(event)
    return events, caught.value


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("kind", ANSWER_FAULTS)
async def test_refusals_are_classified_on_every_operation(client: GrokClient, fake_grok: FakeGrok, out: Path,
                                                          operation: str, kind: str) -> None:
    params, failure, status = ANSWER_FAULTS[kind]
    if operation == "imagine":
        failure = WS_HEADERS_ONLY.get(kind, failure)
    fake_grok.inject(kind, account="tok", **params)
    error = await fails(OPERATIONS[operation](client, out))
    assert error.failure is failure and error.status == status
    if kind == "rate_limited":
        assert error.retry_after == 12
    assert not fake_grok.faults.pending


async def test_refusals_come_before_the_first_chat_event(client: GrokClient, fake_grok: FakeGrok) -> None:
    fake_grok.inject("blocked")
    stream = client.chat("tok", ChatRequest("grok-3", "MODEL_MODE_FAST", "hi"))
    error = await fails(anext(stream))
    assert error.failure is Failure.BLOCKED and "blocked" in error.body_excerpt.lower()


async def test_faults_scoped_to_another_account_or_endpoint_do_not_hit(client: GrokClient, fake_grok: FakeGrok,
                                                                      out: Path) -> None:
    fake_grok.inject("blocked", account="someone-else")
    fake_grok.inject("anti_bot", endpoint="upload", times=None)
    await OPERATIONS["chat"](client, out)
    assert (await fails(OPERATIONS["upload"](client, out))).failure is Failure.ANTI_BOT
    assert (await fails(OPERATIONS["upload"](client, out))).failure is Failure.ANTI_BOT
    fake_grok.clear_faults()
    await OPERATIONS["upload"](client, out)


async def test_rate_limit_in_stream_is_yielded_then_raised(client: GrokClient, fake_grok: FakeGrok) -> None:
    fake_grok.inject("rate_limited_in_stream")
    events, error = await failed_chat(client, "hi")
    assert events == [InStreamError(8, "Too many requests")]
    assert error.failure is Failure.RATE_LIMITED and error.status is None


async def test_usage_limit_mid_stream(client: GrokClient, fake_grok: FakeGrok) -> None:
    fake_grok.inject("usage_limit", after_lines=5)
    events, error = await failed_chat(client, "one two three")
    assert any(isinstance(e, TextDelta) for e in events) and isinstance(events[-1], InStreamError)
    assert error.failure is Failure.RATE_LIMITED


async def test_stream_errors_in_the_model_response(client: GrokClient, fake_grok: FakeGrok) -> None:
    fake_grok.inject("stream_error", message="model exploded")
    events, error = await failed_chat(client, "hi")
    assert isinstance(events[-1], ModelResponse) and events[-1].stream_errors == ["model exploded"]
    assert error.failure is Failure.UPSTREAM_5XX and "model exploded" in error.message


async def test_connection_dropped_mid_stream(client: GrokClient, fake_grok: FakeGrok) -> None:
    fake_grok.inject("drop", after_lines=4)
    events, error = await failed_chat(client, "a b c d e")
    assert error.failure is Failure.NETWORK_AFTER_SEND and events


async def test_exhausted_quota_answers_429(client: GrokClient, fake_grok: FakeGrok, out: Path) -> None:
    fake_grok.add_account("tok", limits={"grok-3": 1})
    await OPERATIONS["chat"](client, out)
    error = await fails(OPERATIONS["chat"](client, out))
    assert error.failure is Failure.RATE_LIMITED and error.status == 429
    assert error.retry_after is not None and 71_990 <= error.retry_after <= 72_000
    assert (await client.rate_limits("tok", "grok-3")).remaining == 0


async def test_exhausted_quota_in_stream(client: GrokClient, fake_grok: FakeGrok, out: Path) -> None:
    fake_grok.quota_exhausted = "in_stream"
    fake_grok.add_account("tok", limits={"grok-3": 0})
    assert (await fails(OPERATIONS["chat"](client, out))).failure is Failure.RATE_LIMITED


async def test_heavy_mode_needs_a_super_account(client: GrokClient, fake_grok: FakeGrok, out: Path) -> None:
    fake_grok.add_account("basic")
    fake_grok.add_account("super", tier="super")
    heavy = ChatRequest("grok-4", "MODEL_MODE_HEAVY", "hard question")
    assert (await fails(chat(heavy, "basic")(client, out))).failure is Failure.RATE_LIMITED
    await chat(heavy, "super")(client, out)


async def test_unknown_or_missing_sso(client: GrokClient, fake_grok: FakeGrok, out: Path) -> None:
    fake_grok.add_account("known")
    for token in ("unknown", ""):
        error = await fails(chat(token=token)(client, out))
        assert error.failure is Failure.INVALID_CREDENTIALS and error.status == 401


@pytest.mark.parametrize(("mode", "static", "accepted"), [
    ("x1-only", None, False),
    ("x1-only", b"x1:TypeError: whatever", True),
    ("signed", None, False),
    ("signed", bytes(70), True),
    ("legacy", b"zz:nope", False),
    ("off", b"anything at all", True),
])
async def test_statsig_checks(client: GrokClient, fake_grok: FakeGrok, settings: Settings, out: Path,
                              mode: str, static: bytes | None, accepted: bool) -> None:
    fake_grok.statsig = mode  # type: ignore[assignment]
    if static is not None:
        set_grok(settings, dynamic_statsig=False, statsig_id=base64.b64encode(static).decode())
    for name in ("chat", "rate_limits", "upload"):
        if accepted:
            await OPERATIONS[name](client, out)
        else:
            error = await fails(OPERATIONS[name](client, out))
            assert error.failure is Failure.ANTI_BOT and "anti-bot" in error.body_excerpt


async def test_statsig_is_not_checked_on_assets_or_websockets(client: GrokClient, fake_grok: FakeGrok,
                                                              out: Path) -> None:
    uploaded = await client.upload_file("tok", "a.png", "image/png", b"png")
    fake_grok.statsig = "signed"
    await client.download_asset("tok", uploaded.file_uri, out / "a.png", max_bytes=9, kind="image")
    await drain(client.imagine("tok", "ok", count=1))


async def test_cloudflare_clearance(client: GrokClient, fake_grok: FakeGrok, settings: Settings, out: Path) -> None:
    fake_grok.require_clearance = "cf-token-1"
    for name in ("rate_limits", "imagine"):
        assert (await fails(OPERATIONS[name](client, out))).failure is Failure.CLOUDFLARE
    set_grok(settings, cf_clearance="cf-token-1")
    await OPERATIONS["rate_limits"](client, out)
    await drain(client.imagine("tok", "ok", count=1))


@pytest.mark.parametrize("operation", ["chat", "rate_limits", "asset", "imagine"])
async def test_unreachable_upstream(client: GrokClient, settings: Settings, out: Path, fake_grok_refused_url: str,
                                    operation: str) -> None:
    set_grok(settings, base_url=fake_grok_refused_url, assets_url=fake_grok_refused_url)
    assert (await fails(OPERATIONS[operation](client, out))).failure is Failure.NETWORK_BEFORE_SEND


@pytest.mark.parametrize("operation", ["chat", "asset", "imagine"])
async def test_connect_timeout(client: GrokClient, settings: Settings, out: Path, fake_grok_blackhole_url: str,
                               operation: str) -> None:
    set_grok(settings, base_url=fake_grok_blackhole_url, assets_url=fake_grok_blackhole_url, connect_timeout=0.3)
    start = time.monotonic()
    assert (await fails(OPERATIONS[operation](client, out))).failure is Failure.TIMEOUT_CONNECT
    assert time.monotonic() - start < 1.5


@pytest.mark.parametrize("operation", ["chat", "rate_limits", "asset", "imagine"])
async def test_first_byte_timeout(client: GrokClient, fake_grok: FakeGrok, settings: Settings, out: Path,
                                  operation: str) -> None:
    set_grok(settings, first_byte_timeout=0.3)
    fake_grok.inject("slow_first_byte", delay=1.0)
    start = time.monotonic()
    assert (await fails(OPERATIONS[operation](client, out))).failure is Failure.TIMEOUT_FIRST_BYTE
    assert time.monotonic() - start < 0.9


async def test_slow_first_byte_within_the_limit_is_fine(client: GrokClient, fake_grok: FakeGrok, out: Path) -> None:
    fake_grok.inject("slow_first_byte", delay=0.2)
    await OPERATIONS["chat"](client, out)


async def test_idle_timeout_between_frames(client: GrokClient, fake_grok: FakeGrok, settings: Settings) -> None:
    set_grok(settings, idle_timeout=0.3)
    fake_grok.inject("idle_gap", after_lines=4, delay=1.0)
    events, error = await failed_chat(client, "hi")
    assert error.failure is Failure.TIMEOUT_IDLE and len(events) >= 3


async def test_idle_timeout_on_the_imagine_socket(client: GrokClient, fake_grok: FakeGrok, settings: Settings,
                                                  out: Path) -> None:
    set_grok(settings, first_byte_timeout=0.3, idle_timeout=0.3)
    fake_grok.imagine_close_after_round = False
    events = []
    with pytest.raises(UpstreamError) as caught:
        async for event in client.imagine("tok", "p", count=5):  # the fake makes 4, then stays silent
            events.append(event)
    assert caught.value.failure is Failure.TIMEOUT_IDLE and len(events) > 10


async def test_total_timeout(client: GrokClient, fake_grok: FakeGrok, settings: Settings) -> None:
    set_grok(settings, timeout=0.4)
    fake_grok.frame_delay = 0.1
    start = time.monotonic()
    with pytest.raises(UpstreamError) as caught:
        await drain(client.chat("tok", ChatRequest("grok-4", "MODEL_MODE_GROK_4_THINKING", "slow")))
    assert caught.value.failure is Failure.TIMEOUT_TOTAL and time.monotonic() - start < 0.8


async def test_error_bodies_are_logged_truncated_and_masked(client: GrokClient, fake_grok: FakeGrok,
                                                            out: Path) -> None:
    secret = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzZWNyZXQifQ.c2lnbmF0dXJlLXNlY3JldA"
    fake_grok.inject("server_error", message=f"sso={secret}; cf_clearance=abcdefghijklmnopq " + "x" * 5000)
    lines: list[str] = []
    sink = logger.add(lines.append, format="{message}", level="WARNING")
    try:
        error = await fails(OPERATIONS["rate_limits"](client, out))
    finally:
        logger.remove(sink)
    assert error.failure is Failure.UPSTREAM_5XX and len(error.body_excerpt) <= 501
    assert secret not in error.body_excerpt and "abcdefghijklmnopq" not in error.body_excerpt
    logged = "".join(lines)
    assert "upstream_5xx" in logged and "rate_limits" in logged
    assert secret not in logged and "abcdefghijklmnopq" not in logged


def test_retry_after_forms() -> None:
    assert retry_after({"retry-after": "30"}) == 30
    in_a_minute = retry_after({"retry-after": formatdate(time.time() + 60, usegmt=True)})
    assert in_a_minute is not None and 55 <= in_a_minute <= 60
    assert retry_after({}, b'{"waitTimeSeconds": 12648, "remainingQueries": 0}') == 12648
    assert retry_after({}, b'{"error": {"code": 8, "waitTimeSeconds": 5}}') == 5
    assert retry_after({"retry-after": "soon"}, b"not json") is None


@pytest.mark.parametrize(("status", "headers", "body", "failure"), [
    (400, {}, b'{"error":{"message":"bad-credentials"}}', Failure.INVALID_CREDENTIALS),
    (403, {}, b'{"code":7,"message":"User is blocked"}', Failure.BLOCKED),
    (403, {}, b'{"error":{"message":"account suspended"}}', Failure.BLOCKED),
    (403, {}, b"<html><head><title>403 Forbidden</title></head></html>", Failure.CLOUDFLARE),
    (403, {"cf-mitigated": "challenge"}, b"{}", Failure.CLOUDFLARE),
    (403, {}, b'{"error":{"message":"You\'ve used up your media generation credits."}}', Failure.RATE_LIMITED),
    (404, {}, b"not found", Failure.BAD_REQUEST),
    (503, {}, b"", Failure.UPSTREAM_5XX),
])
def test_status_classification(status: int, headers: dict[str, str], body: bytes, failure: Failure) -> None:
    assert from_status(status, headers, body, "op").failure is failure


@pytest.mark.parametrize(("code", "message", "failure"), [
    (8, "Too many requests", Failure.RATE_LIMITED),
    (None, "You've reached your usage limit. Please try again later.", Failure.RATE_LIMITED),
    (7, "Request rejected by anti-bot rules.", Failure.ANTI_BOT),
    (7, "User is blocked [WKE=unauthorized:blocked-user]", Failure.BLOCKED),
    (16, "unauthenticated", Failure.INVALID_CREDENTIALS),
    ("content-moderated", "rejected", Failure.MODERATED),
    (13, "internal", Failure.UPSTREAM_5XX),
])
def test_in_stream_classification(code: int | str | None, message: str, failure: Failure) -> None:
    assert from_stream_error(code, message, "op").failure is failure


async def test_cancelled_operations_leave_the_client_usable(client: GrokClient, fake_grok: FakeGrok,
                                                            out: Path) -> None:
    fake_grok.inject("slow_first_byte", delay=1.0)
    task = asyncio.create_task(client.rate_limits("tok", "grok-3"))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await client.rate_limits("tok", "grok-3")
