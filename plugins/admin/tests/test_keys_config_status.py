"""API keys in the original's shapes, config with secrets redacted and validated changes,
storage, version and metrics."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from grok2api.api import KEYS, POOL, REQUEST_LOG, SETTINGS, STORAGE

from .support import Admin, Client, body_of, ready


async def call(client: Client, h: dict[str, str], path: str, body: dict[str, Any] | None = None,
               status: int = 200) -> dict[str, Any]:
    resp = await (client.get(path, headers=h) if body is None else client.post(path, json=body, headers=h))
    return await body_of(resp, status)


async def test_keys_create_list_update_delete(admin: Admin) -> None:
    client, h = await ready(admin)
    made = (await call(client, h, "/api/v1/admin/keys", {"name": "team", "preset": "recommended",
                                                          "limits": {"video_per_day": 5}}))["data"]
    assert made["key"].startswith("sk-") and made["chat_limit"] == 300 and made["video_limit"] == 5
    assert made["display_key"] == f"{made['key'][:6]}...{made['key'][-4:]}"
    await call(client, h, "/api/v1/admin/keys", {"key": made["key"]}, 400)  # "Key already exists"
    own = (await call(client, h, "/api/v1/admin/keys", {"key": "sk-mine-1234567890", "is_active": False}))["data"]
    listed = await call(client, h, "/api/v1/admin/keys")
    assert listed["success"] is True and len(listed["data"]) == 2
    row = next(r for r in listed["data"] if r["id"] == made["id"])
    assert {"display_key", "usage_today", "remaining_today", "day", "name", "is_active", "created_at"} <= set(row)
    assert row["remaining_today"]["chat"] == 300 and "key" not in row
    updated = await call(client, h, "/api/v1/admin/keys/update", {"key": own["key"], "is_active": True,
                                                                  "limits": {"chat_per_day": ""}})
    assert updated["success"] is True and updated["data"]["is_active"] is True
    await call(client, h, "/api/v1/admin/keys/update", {"id": made["id"], "name": "renamed"})
    missing = await call(client, h, "/api/v1/admin/keys/update", {"key": "sk-nobody", "name": "x"}, 404)
    assert missing["error"]["message"] == "Key not found"
    await call(client, h, "/api/v1/admin/keys/update", {"name": "x"}, 400)  # "Missing key"
    await call(client, h, "/api/v1/admin/keys/update", {"key": own["key"], "is_active": "yes"}, 400)
    await call(client, h, "/api/v1/admin/keys", {"preset": "lavish"}, 400)
    assert (await call(client, h, "/api/v1/admin/keys/delete", {"key": own["key"]}))["success"] is True
    await call(client, h, "/api/v1/admin/keys/delete", {"key": own["key"]}, 404)
    assert await client.app[KEYS].authenticate(made["key"]) is not None


async def test_config_is_redacted_with_sources(admin: Admin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROK2API_GROK__TIMEOUT", "77")
    with open(os.path.join(os.environ["DATA_DIR"], "config.toml"), "w", encoding="utf-8") as fh:
        fh.write('[grok]\ncf_clearance = "cf-secret-value"\nbase_proxy_url = "http://user:pw@proxy.local:8080"\n')
    client, h = await ready(admin, app={"api_key": "sk-global-secret-123456"})
    await call(client, h, "/api/v1/admin/config", {"token": {"fail_threshold": 4}})
    config = await call(client, h, "/api/v1/admin/config")
    text = str(config)
    for secret in ("sk-global-secret-123456", "cf-secret-value", "user:pw", "a-long-new-password"):
        assert secret not in text
    assert config["app"]["api_key"] == "***" and config["grok"]["base_proxy_url"] == "http://***@proxy.local:8080"
    assert config["admin"]["session_idle_sec"] > 0  # plugin sections too
    detail = await call(client, h, "/api/v1/admin/config?detail=1")
    sources = detail["sources"]
    assert sources["grok.timeout"] == "environment" and sources["grok.cf_clearance"] == "file"
    assert sources["token.fail_threshold"] == "runtime" and sources["token.save_delay_ms"] == "default"
    assert "app.app_key" in detail["secrets"]


async def test_config_changes_are_validated_and_never_touch_accounts(admin: Admin) -> None:
    client, h = await ready(admin)
    await call(client, h, "/api/v1/admin/tokens/add", {"tokens": ["acct-token-0123456789abcdef"]})
    config = await call(client, h, "/api/v1/admin/config")
    config["grok"]["max_retry"] = 2
    config["app"]["image_format"] = "base64"
    done = await call(client, h, "/api/v1/admin/config", config)  # the whole object, redacted secrets included
    assert done["changed"] == ["app.image_format", "grok.max_retry"]
    settings = client.app[SETTINGS]
    assert settings.grok.max_retry == 2 and settings.app.app_key == "admin"  # the seed value, untouched
    assert (await client.app[STORAGE].get("config", "grok")) == {"max_retry": 2}
    bad = await call(client, h, "/api/v1/admin/config", {"app": {"image_format": "gif"}}, 400)
    assert bad["error"]["param"] == "app.image_format" and "b64_json" in bad["error"]["message"]
    assert (await call(client, h, "/api/v1/admin/config", {"grok": {"nope": 1}}, 400))["error"]["param"] == "grok.nope"
    assert (await call(client, h, "/api/v1/admin/config", {"nosuch": {}}, 400))["error"]["param"] == "nosuch"
    refused = await call(client, h, "/api/v1/admin/config", {"app": {"app_key": "hunter22"}}, 400)
    assert "password" in refused["error"]["message"]
    await call(client, h, "/api/v1/admin/config", {"server": {"port": 1}}, 400)
    assert settings.app.image_format == "base64" and len(client.app[POOL].accounts()) == 1
    await call(client, h, "/api/v1/admin/config/reset", {"keys": ["grok.max_retry", "app.image_format"]})
    settings = client.app[SETTINGS]  # rebound: mypy would keep image_format narrowed to "base64" by the assert above
    assert settings.grok.max_retry == 3 and settings.app.image_format == "url"
    await call(client, h, "/api/v1/admin/config/reset", {"keys": ["grok.nope"]}, 400)
    await call(client, h, "/api/v1/admin/config/reset", {"keys": ["app.app_key"]}, 400)


async def test_config_change_reaches_another_worker(admin: Admin) -> None:
    one, h = await ready(admin, token={"reload_interval_sec": 0.1})
    two = await admin(token={"reload_interval_sec": 0.1})  # the same database, its own settings
    assert two.app[SETTINGS] is not one.app[SETTINGS]
    await call(one, h, "/api/v1/admin/config", {"grok": {"max_retry": 1}})
    for _ in range(100):
        if two.app[SETTINGS].grok.max_retry == 1:
            break
        await asyncio.sleep(0.05)
    assert two.app[SETTINGS].grok.max_retry == 1


async def test_storage_version_and_metrics(admin: Admin) -> None:
    client, h = await ready(admin)
    assert (await call(client, h, "/api/v1/admin/storage"))["type"] == "local"
    assert (await call(client, h, "/api/v1/admin/version"))["version"]
    await call(client, h, "/api/v1/admin/tokens/add", {"tokens": ["metric-token-0123456789ab"]})
    log = client.app[REQUEST_LOG]
    for status in (200, 200, 500):
        log.record(method="POST", path="/v1/chat/completions", status=status, duration_ms=5, model="grok-3",
                   key_name="k")
    await log.flush()
    body = await call(client, h, "/api/v1/admin/metrics")
    assert body["tokens"]["total"] == 1 and body["tokens"]["active"] == 1
    assert set(body["cache"]) == {"local_image", "local_video"}
    stats = body["request_stats"]
    assert len(stats["hourly"]) == 24 and len(stats["daily"]) == 7
    assert stats["hourly"][-1]["total"] == 3 and stats["daily"][-1] == {**stats["daily"][-1], "success": 2}
    assert stats["models"] == [{"model": "grok-3", "count": 3, "success": 2, "failed": 1, "tokens_in": 0,
                                "tokens_out": 0}]
    assert {k: stats["summary"][k] for k in ("total", "success", "failed", "success_rate", "server_error")} == {
        "total": 3, "success": 2, "failed": 1, "success_rate": 66.7, "server_error": 1}
    assert stats["keys"][0]["id"] == "k" and stats["keys"][0]["count"] == 3  # a name without a managed key
