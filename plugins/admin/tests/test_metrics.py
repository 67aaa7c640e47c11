"""``GET /api/v1/admin/metrics``: the original's datacenter shape plus requests by key, tokens in
and out, time to first token and accounts by state, from the request log's shared counters
(real chat requests through the openai SDK against the fake Grok; two workers on server engines)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import orjson
import pytest

from grok2api.api import POOL, REQUEST_LOG, SESSIONS, SETTINGS, Settings, random_hex
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.pytest_plugin import GatewayFactory
from grok2api_plugins.admin.identity import StoredSessions
from grok2api_plugins.admin.settings import AdminSettings
from grok2api_plugins.admin.status import percentile

from .support import PASSWORD, PLUGINS, Client, auth, body_of, changed

GLOBAL_KEY = "sk-metrics-global-0123456789"
MODEL = "grok-4.1-fast"


async def metrics(client: Client, h: dict[str, str]) -> dict[str, Any]:
    return await body_of(await client.get("/api/v1/admin/metrics", headers=h))


async def test_metrics_count_chat_traffic_by_key_with_tokens_and_first_token(
        gateway: GatewayFactory, make_settings: Callable[..., Settings], fake_grok: FakeGrok) -> None:
    fake_grok.add_account("metrics-account-1")
    settings = make_settings(grok={**fake_grok.grok_settings(), "timeout": 10}, app={"api_key": GLOBAL_KEY})
    client: Client = await gateway(*PLUGINS, "chat", settings=settings)
    h = auth(await changed(client))
    await client.app[POOL].add(["metrics-account-1"])
    created = await body_of(await client.post("/api/v1/admin/keys", json={"name": "team-a"}, headers=h))
    managed_key, managed_id = created["data"]["key"], created["data"]["id"]

    base = str(client.make_url("/v1"))
    managed = openai.AsyncOpenAI(base_url=base, api_key=managed_key, max_retries=0)
    tokens_in = tokens_out = 0
    for n in range(2):
        answer = await managed.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": f"hi {n}"}])
        assert answer.usage is not None
        tokens_in, tokens_out = tokens_in + answer.usage.prompt_tokens, tokens_out + answer.usage.completion_tokens
    stream = await managed.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "stream"}],
                                                   stream=True, stream_options={"include_usage": True})
    async for chunk in stream:
        if chunk.usage is not None:
            tokens_in, tokens_out = tokens_in + chunk.usage.prompt_tokens, tokens_out + chunk.usage.completion_tokens
    with pytest.raises(openai.NotFoundError):
        await openai.AsyncOpenAI(base_url=base, api_key=GLOBAL_KEY, max_retries=0).chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    await client.app[REQUEST_LOG].flush()

    raw = await (await client.get("/api/v1/admin/metrics", headers=h)).read()
    assert managed_key.encode() not in raw and GLOBAL_KEY.encode() not in raw
    body = orjson.loads(raw)
    assert set(body) >= {"tokens", "cache", "request_stats", "accounts"}
    stats = body["request_stats"]
    summary = stats["summary"]
    assert (summary["total"], summary["success"], summary["failed"], summary["client_error"]) == (4, 3, 1, 1)
    assert summary["success_rate"] == 75.0 and tokens_in > 0 and tokens_out > 0
    assert (summary["tokens_in"], summary["tokens_out"]) == (tokens_in, tokens_out)
    ttft = summary["ttft_ms"]
    assert ttft["count"] == 3 and ttft["p50"] is not None and 0 <= ttft["p50"] <= ttft["p95"]
    assert stats["hourly"][-1] == {**stats["hourly"][-1], "total": 4, "tokens_in": tokens_in}
    assert stats["daily"][-1]["ttft_ms"]["count"] == 3 and stats["daily"][-1]["success_rate"] == 75.0
    assert stats["models"] == [{"model": MODEL, "count": 3, "success": 3, "failed": 0, "tokens_in": tokens_in,
                                "tokens_out": tokens_out}]
    keys = {row["id"]: row for row in stats["keys"]}
    assert keys[managed_id] == {"id": managed_id, "name": "team-a", "display_key": created["data"]["display_key"],
                                "managed": True, "count": 3, "success": 3, "failed": 0, "success_rate": 100.0,
                                "tokens_in": tokens_in, "tokens_out": tokens_out}
    assert keys["global"] == {**keys["global"], "managed": False, "count": 1, "failed": 1, "display_key": None}
    assert body["accounts"] == {"total": 1, "by_status": {"active": 1, "cooling": 0, "expired": 0, "disabled": 0},
                                "by_state": {"active": 1, "invalid": 0, "exhausted": 0},
                                "by_type": {"sso": 1, "supersso": 0}, "by_pool": {"ssoBasic": 1}}
    assert body["tokens"]["total"] == 1 and body["tokens"]["active"] == 1
    raw = await (await client.get(f"/api/v1/admin/logs/requests?model={MODEL}", headers=h)).read()
    assert managed_key.encode() not in raw
    entries = orjson.loads(raw)["items"]
    assert len(entries) == 3 and all(e["key_id"] == managed_id and e["key"] == "team-a" for e in entries)
    assert sum(e["tokens_in"] for e in entries) == tokens_in and all(e["first_byte_ms"] >= 0 for e in entries)


async def test_first_token_percentiles_come_from_the_buckets(gateway: GatewayFactory,
                                                             make_settings: Callable[..., Settings]) -> None:
    client: Client = await gateway(*PLUGINS, settings=make_settings())
    h = auth(await changed(client))
    log = client.app[REQUEST_LOG]
    for n in range(100):  # 90 answers within 100 ms, 10 after 2.5 s; errors and model-less calls do not count
        log.record(method="POST", path="/v1/chat/completions", status=200, duration_ms=3000, model="m",
                   key_name="k", first_byte_ms=80 if n < 90 else 2500)
    log.record(method="POST", path="/v1/chat/completions", status=502, duration_ms=9, model="m", key_name="k",
               first_byte_ms=90_000)
    log.record(method="GET", path="/v1/models", status=200, duration_ms=1, model=None, key_name="k",
               first_byte_ms=90_000)
    await log.flush()
    summary = (await metrics(client, h))["request_stats"]["summary"]
    assert summary["ttft_ms"] == {"p50": round(100 * 50 / 90, 1), "p95": 2500.0, "count": 100}
    assert summary["avg_duration_ms"] == round((100 * 3000 + 9 + 1) / 102, 1)
    assert percentile({"ttfb_0_100": 1, "ttfb_60000_inf": 3}, 0.9) == 60000.0  # the open bucket: its lower bound
    assert percentile({}, 0.5) is None


@pytest.mark.parametrize("kind", ["pgsql", "redis"])
async def test_every_worker_answers_the_same_figures(kind: str, request: pytest.FixtureRequest,
                                                     gateway: GatewayFactory,
                                                     make_settings: Callable[..., Settings]) -> None:
    """Server engines keep earlier tests' data: this one counts its own model and key only."""
    settings = make_settings(server={"storage_type": kind, "storage_url": request.getfixturevalue(f"{kind}_url")},
                             app={"trusted_proxies": ["127.0.0.1"]})
    one: Client = await gateway(f"storage_{kind}", "admin", settings=settings)
    two: Client = await gateway(f"storage_{kind}", "admin", settings=settings)
    for client in (one, two):
        client.app[SETTINGS].admin = AdminSettings()  # type: ignore[attr-defined]
    sessions = one.app[SESSIONS]
    assert isinstance(sessions, StoredSessions)
    username = f"metrics-{random_hex(6)}"
    await sessions.users.create(username, PASSWORD)
    login = await body_of(await two.post("/api/v1/admin/login", json={"username": username, "password": PASSWORD}))
    h = auth(login["token"])
    model, key = f"model-{random_hex(6)}", f"key-{random_hex(6)}"
    for status, first_byte in ((200, 120.0), (200, 130.0), (429, 5.0)):
        one.app[REQUEST_LOG].record(method="POST", path="/v1/chat/completions", status=status, duration_ms=200,
                                    model=model, key_name=key, first_byte_ms=first_byte, prompt_tokens=7,
                                    completion_tokens=11)
    await one.app[REQUEST_LOG].flush()
    seen = [(await metrics(client, h))["request_stats"] for client in (one, two)]
    assert seen[0] == seen[1]
    models = {row["model"]: row for row in seen[1]["models"]}
    keys = {row["id"]: row for row in seen[1]["keys"]}
    assert models[model] == {"model": model, "count": 3, "success": 2, "failed": 1, "tokens_in": 21,
                             "tokens_out": 33}
    assert keys[key]["count"] == 3 and keys[key]["success_rate"] == 66.7
