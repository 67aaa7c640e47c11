"""Helpers of the admin plugin's tests: a gateway with the admin plugin, logins, headers."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

PLUGINS = ("storage_local", "admin")
PASSWORD = "a-long-new-password"
API_KEY = "sk-admin-tests-0123456789"
#: a client on another machine, as a trusted proxy on this one names it
REMOTE = {"X-Forwarded-For": "203.0.113.9"}
PROXIED = {"trusted_proxies": ["127.0.0.1"]}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(client: TestClient, password: str = "admin", *, headers: dict[str, str] | None = None,
                username: str = "admin") -> dict[str, Any]:
    resp = await client.post("/api/v1/admin/login", json={"username": username, "password": password},
                             headers=headers or {})
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    client.session.cookie_jar.clear()  # the tests choose bearer or cookie themselves
    return body


async def changed(client: TestClient) -> str:
    """Log in with the default password and change it; returns a session token under the new one."""
    first = await login(client)
    resp = await client.post("/api/v1/admin/password", headers=auth(first["token"]),
                             json={"current_password": "admin", "new_password": PASSWORD})
    assert resp.status == 200, await resp.text()
    token: str = (await resp.json())["token"]
    client.session.cookie_jar.clear()
    return token
