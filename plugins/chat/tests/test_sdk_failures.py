"""Every upstream failure class, before the first byte (an HTTP status, after rotation when
the pool allows it) and after it (an error chunk, then ``[DONE]``), never silence."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from .conftest import StartGateway
from .support import error_of

ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Tell me several words about the sea"}]
QUICK = {"first_byte_timeout": 0.4, "idle_timeout": 0.4}

BEFORE = [  # fault, its parameters, HTTP status, error code, whether the pool moves on to another account
    ("invalid_credentials", {}, 502, "upstream_auth_failed", True),
    ("blocked", {}, 502, "upstream_auth_failed", True),
    ("anti_bot", {}, 502, "upstream_rejected", True),
    ("cloudflare", {}, 502, "upstream_rejected", True),
    ("cloudflare_empty", {}, 502, "upstream_rejected", True),
    ("rate_limited", {"retry_after": 30}, 429, "rate_limit_exceeded", True),
    ("rate_limited_in_stream", {}, 429, "rate_limit_exceeded", True),
    ("slow_first_byte", {"delay": 1.0}, 504, "upstream_timeout", False),  # 504 is not in retry_status_codes
    ("moderated", {}, 400, "content_policy_violation", False),
    ("server_error", {"status": 503}, 502, "upstream_error", False),
    ("disconnect", {}, 502, "upstream_error", False),
]
DURING = [  # fault, its parameters, status and code in the error chunk
    ("usage_limit", {"after_lines": 5}, 429, "rate_limit_exceeded"),
    ("drop", {"after_lines": 5}, 502, "upstream_error"),
    ("truncate", {"after_lines": 5}, 502, "upstream_error"),  # a clean end before Grok said it was done
    ("idle_gap", {"after_lines": 5, "delay": 1.0}, 504, "upstream_timeout"),
    ("stream_error", {}, 502, "upstream_error"),
]


def ids(cases: list[tuple[Any, ...]]) -> list[str]:
    return [case[0] for case in cases]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(("fault", "params", "status", "code", "_"), BEFORE, ids=ids(BEFORE))
async def test_failures_before_the_first_byte_are_http_errors(
        start_gateway: StartGateway, fault: str, params: dict[str, Any], status: int, code: str, _: bool,
        stream: bool) -> None:
    live = await start_gateway(grok=QUICK)
    live.fake.inject(fault, endpoint="chat", **params)
    with pytest.raises(openai.APIStatusError) as caught:
        answer = await live.aclient().chat.completions.create(model="grok-4", messages=ASK, stream=stream)
        if isinstance(answer, openai.AsyncStream):  # pragma: no cover - the request itself must fail
            async for _chunk in answer:
                pass
    assert (caught.value.status_code, error_of(caught.value)["code"]) == (status, code)
    if "retry_after" in params:
        assert caught.value.response.headers["retry-after"] == "30"
    assert live.inflight() == {"basic-1": 0}


@pytest.mark.parametrize(("fault", "params", "status", "code", "rotates"), BEFORE, ids=ids(BEFORE))
async def test_retryable_failures_move_to_another_account(
        start_gateway: StartGateway, fault: str, params: dict[str, Any], status: int, code: str,
        rotates: bool) -> None:
    live = await start_gateway(basic=["basic-1", "basic-2"], grok=QUICK)
    live.fake.inject(fault, endpoint="chat", **params)
    client = live.aclient()
    if rotates:
        answer = await client.chat.completions.create(model="grok-4", messages=ASK)
        assert answer.choices[0].message.content == "Echo: Tell me several words about the sea"
        first, second = live.chats()
        assert first.sso != second.sso
    else:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model="grok-4", messages=ASK)
        assert caught.value.status_code == status and len(live.chats()) == 1
    assert set(live.inflight().values()) == {0}


@pytest.mark.parametrize(("fault", "params", "status", "code"), DURING, ids=ids(DURING))
async def test_failures_after_the_first_byte_end_the_stream_with_an_error(
        start_gateway: StartGateway, fault: str, params: dict[str, Any], status: int, code: str) -> None:
    live = await start_gateway(basic=["basic-1", "basic-2"], grok=QUICK)
    live.fake.inject(fault, endpoint="chat", **params)
    stream = await live.aclient().chat.completions.create(model="grok-4", messages=ASK, stream=True)
    received = []
    with pytest.raises(openai.APIError) as caught:
        async for chunk in stream:
            received.append(chunk)
    assert received[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in received).startswith("Echo:")
    assert all(c.choices[0].finish_reason is None for c in received)
    assert error_of(caught.value)["code"] == code
    (path, http_status, schemas) = live.bodies.seen[-1]
    assert http_status == 200 and schemas[-1] == "ErrorResponse"
    assert set(live.inflight().values()) == {0}

    live.fake.inject(fault, endpoint="chat", **params)  # the other account; the first may be cooling down now
    with pytest.raises(openai.APIStatusError) as failed:
        await live.aclient().chat.completions.create(model="grok-4", messages=ASK)
    assert (failed.value.status_code, error_of(failed.value)["code"]) == (status, code)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
async def test_an_answer_without_text_is_an_error_not_an_empty_200(start_gateway: StartGateway, stream: bool) -> None:
    live = await start_gateway()
    live.fake.inject("truncate", endpoint="chat", after_lines=3)  # conversation, user echo, model hash: no text
    with pytest.raises(openai.APIStatusError) as caught:
        answer = await live.aclient().chat.completions.create(model="grok-4", messages=ASK, stream=stream)
        if isinstance(answer, openai.AsyncStream):  # pragma: no cover - the request itself must fail
            async for _chunk in answer:
                pass
    assert (caught.value.status_code, error_of(caught.value)["code"]) == (502, "upstream_error")
