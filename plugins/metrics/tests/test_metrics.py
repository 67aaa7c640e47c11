"""``GET /metrics`` in one process: who may scrape, and what a scrape shows after real requests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from grok2api.api import KEYS, MEDIA, POOL, POOL_SUPER
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.openai_schema import validate

Client = TestClient[web.Request, web.Application]
TOKEN = "scrape-token-0123456789"
KEY = "sk-metrics0123456789abcdef"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def metrics_gateway(gateway: Any, fake_grok: FakeGrok, make_settings: Callable[..., Any],
                          monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.setenv("GROK2API_METRICS__TOKEN", TOKEN)
    fake_grok.add_account("acct-basic-1")
    fake_grok.add_account("acct-super-1", tier="super")
    client: Client = await gateway("storage_local", "chat", "metrics",
                                       settings=make_settings(grok=fake_grok.grok_settings()))
    await client.app[KEYS].create(key=KEY, name="team-a")
    await client.app[POOL].add(["acct-basic-1"])
    await client.app[POOL].add(["acct-super-1"], pool=POOL_SUPER)
    return client


async def scrape(client: Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    resp = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200 and resp.content_type == "text/plain"
    return samples(await resp.text())


async def test_only_the_token_or_an_admin_session_may_scrape(metrics_gateway: Client) -> None:
    client = metrics_gateway
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {KEY}"},
                    {"Authorization": TOKEN}):
        resp = await client.get("/metrics", headers=headers)
        assert resp.status == 401
        validate("ErrorResponse", await resp.json())
    login = await client.post("/api/v1/admin/login", json={"username": "admin", "password": "admin"})
    session = (await login.json())["token"]
    assert (await client.get("/metrics", headers={"Authorization": f"Bearer {session}"})).status == 200
    assert (await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).status == 200


async def test_a_scrape_shows_requests_latency_failures_pool_and_cache(metrics_gateway: Client,
                                                                       fake_grok: FakeGrok) -> None:
    client = metrics_gateway
    sdk = openai.AsyncOpenAI(base_url=str(client.make_url("/v1")), api_key=KEY, max_retries=0)
    try:
        for _ in range(2):
            raw = await sdk.chat.completions.with_raw_response.create(
                model="grok-3", messages=[{"role": "user", "content": "hi"}])
            validate("CreateChatCompletionResponse", orjson.loads(raw.content))
        fake_grok.inject("server_error", endpoint="chat", times=None)
        with pytest.raises(openai.APIStatusError) as failed:
            await sdk.chat.completions.create(model="grok-3", messages=[{"role": "user", "content": "hi"}])
        validate("ErrorResponse", failed.value.response.json())
        fake_grok.clear_faults()
        with pytest.raises(openai.NotFoundError):
            await sdk.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    finally:
        await sdk.close()
    media = client.app[MEDIA].directory("image")
    media.mkdir(parents=True, exist_ok=True)
    (media / "cached.png").write_bytes(b"x" * 1234)
    await client.app[POOL].update("acct-basic-1", status="disabled")

    scraped = await scrape(client)
    chat = "/v1/chat/completions"
    status = str(failed.value.status_code)
    assert value(scraped, "grok2api_requests_total", route=chat, model="grok-3", key="team-a", status="200") == 2
    assert value(scraped, "grok2api_requests_total", route=chat, model="grok-3", key="team-a", status=status) == 1
    assert value(scraped, "grok2api_requests_total", route=chat, model="", key="team-a", status="404") == 1
    assert value(scraped, "grok2api_request_duration_seconds_count", route=chat, model="grok-3") == 3
    assert value(scraped, "grok2api_time_to_first_token_seconds_count", model="grok-3") == 3
    assert value(scraped, "grok2api_upstream_failures_total", code=failed.value.code or "") == 1
    assert value(scraped, "grok2api_account_failures_total", failure="upstream_5xx") >= 1
    assert value(scraped, "grok2api_accounts", state="disabled", tier="basic") == 1
    assert value(scraped, "grok2api_accounts", state="active", tier="super") == 1
    assert ("grok2api_quota_remaining", frozenset({("bucket", "normal"), ("tier", "super")})) in scraped or \
        value(scraped, "grok2api_quota_unknown_accounts", bucket="normal", tier="super") == 1
    assert value(scraped, "grok2api_media_cache_bytes", kind="image") == 1234
    assert value(scraped, "grok2api_media_cache_files", kind="image") == 1
    assert value(scraped, "grok2api_build_info", version=__import__("grok2api").__version__) == 1
    # the scrape itself is a request too, counted once it has finished
    scraped = await scrape(client)
    assert value(scraped, "grok2api_requests_total", route="/metrics", model="", key="", status="200") >= 1
