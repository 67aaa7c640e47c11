"""Helpers of the admin plugin's tests: a gateway with the admin plugin, logins, headers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from grok2api.api import POOL, Account

Client = TestClient[web.Request, web.Application]
#: the ``admin`` fixture: ``await admin(app={...}, admin={...})`` gives a client of a fresh gateway
Admin = Callable[..., Awaitable[Client]]
PLUGINS = ("storage_local", "admin")
PASSWORD = "a-long-new-password"
API_KEY = "sk-admin-tests-0123456789"
#: a client on another machine, as a trusted proxy on this one names it
REMOTE = {"X-Forwarded-For": "203.0.113.9"}
PROXIED = {"trusted_proxies": ["127.0.0.1"]}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def account(client: Client, token: str) -> Account:
    """The pool's account of a token the test has added."""
    found = client.app[POOL].get(token)
    assert found is not None, f"no account of {token}"
    return found


async def body_of(resp: ClientResponse, status: int = 200) -> dict[str, Any]:
    """The JSON object a response carries, once its status is the expected one."""
    assert resp.status == status, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def login(client: Client, password: str = "admin", *, headers: dict[str, str] | None = None,
                username: str = "admin") -> dict[str, Any]:
    resp = await client.post("/api/v1/admin/login", json={"username": username, "password": password},
                             headers=headers or {})
    body = await body_of(resp)
    client.session.cookie_jar.clear()  # the tests choose bearer or cookie themselves
    return body


async def changed(client: Client) -> str:
    """Log in with the default password and change it; returns a session token under the new one."""
    first = await login(client)
    resp = await client.post("/api/v1/admin/password", headers=auth(first["token"]),
                             json={"current_password": "admin", "new_password": PASSWORD})
    token: str = (await body_of(resp))["token"]
    client.session.cookie_jar.clear()
    return token


async def ready(admin: Admin, **sections: dict[str, Any]) -> tuple[Client, dict[str, str]]:
    """A gateway whose admin password is already changed, and the headers of its session."""
    client = await admin(**sections)
    return client, auth(await changed(client))


async def job_running(client: Client, h: dict[str, str]) -> dict[str, Any]:
    """The newest job once a worker is working it (a state is awaited, not a time; the page's
    click may not have created it yet)."""
    while True:
        jobs_now: list[dict[str, Any]] = (await body_of(await client.get("/api/v1/admin/jobs", headers=h)))["jobs"]
        if jobs_now and jobs_now[0]["state"] == "running":
            return jobs_now[0]
        await asyncio.sleep(0.05)
