"""API keys open /v1, admin sessions open /api/v1/admin, never the other way round."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import make_mocked_request

from grok2api.web.appkeys import KEYS
from grok2api.web.auth import authenticate_api
from grok2api.web.errors import ApiError

from .plugins_for_tests import CrashPlugin, EchoPlugin

STORE = "storage_local"
KEY = "sk-global-test-key-0123456789"


async def login(client, password: str = "admin") -> str:
    resp = await client.post("/api/v1/admin/login", json={"username": "admin", "password": password})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["token"]


async def test_global_key_required_when_configured(gateway, make_settings) -> None:
    client = await gateway(STORE, EchoPlugin(), settings=make_settings(app={"api_key": KEY}))
    missing = await client.get("/v1/models")
    assert missing.status == 401
    assert (await missing.json())["error"]["code"] == "invalid_api_key"
    wrong = await client.get("/v1/models", headers={"Authorization": "Bearer sk-wrong"})
    assert wrong.status == 401
    ok = await client.get("/v1/models", headers={"Authorization": f"Bearer {KEY}"})
    assert ok.status == 200


async def test_files_are_not_behind_keys(gateway, make_settings) -> None:
    client = await gateway(STORE, settings=make_settings(app={"api_key": KEY}))
    resp = await client.get("/v1/files/image/none.jpg")
    assert resp.status == 404  # reached routing, not auth


async def test_open_mode_serves_loopback_only(gateway) -> None:
    client = await gateway(STORE)
    keys = client.app[KEYS]
    local = make_mocked_request("GET", "/v1/models").clone(remote="127.0.0.1")
    assert (await authenticate_api(local, "", keys)).kind == "open"
    remote = make_mocked_request("GET", "/v1/models").clone(remote="203.0.113.7")
    with pytest.raises(ApiError) as caught:
        await authenticate_api(remote, "", keys)
    assert caught.value.status == 401
    assert "grok2api keys create" in caught.value.message


async def test_admin_session_and_api_key_do_not_cross(gateway, make_settings) -> None:
    client = await gateway(STORE, EchoPlugin(), settings=make_settings(app={"api_key": KEY}))
    token = await login(client)
    assert (await client.get("/api/v1/admin/plugins", headers={"Authorization": f"Bearer {token}"})).status == 200
    # the admin session does not open /v1
    assert (await client.get("/v1/models", headers={"Authorization": f"Bearer {token}"})).status == 401
    # the API key does not open admin routes
    assert (await client.get("/api/v1/admin/plugins", headers={"Authorization": f"Bearer {KEY}"})).status == 401
    assert (await client.get("/api/v1/admin/plugins")).status == 401


async def test_admin_login_failures(gateway) -> None:
    client = await gateway(STORE)
    bad = await client.post("/api/v1/admin/login", json={"username": "admin", "password": "nope"})
    assert bad.status == 401
    missing = await client.post("/api/v1/admin/login", json={"username": "admin"})
    assert missing.status == 400
    assert (await missing.json())["error"]["param"] == "password"
    broken = await client.post("/api/v1/admin/login", data=b"{", headers={"Content-Type": "application/json"})
    assert broken.status == 400


async def test_admin_route_errors_are_openai_errors(gateway) -> None:
    client = await gateway(STORE, CrashPlugin())
    token = await login(client)
    resp = await client.get("/api/v1/admin/boom", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 500
    assert (await resp.json())["error"]["code"] == "internal_error"
