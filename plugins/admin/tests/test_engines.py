"""Sessions, CSRF and the login throttle on every server engine, across two workers.

Server engines keep the data of earlier tests, so each test makes its own admin user
and logs in from its own (forwarded) address."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from grok2api.api import SESSIONS, random_hex
from grok2api_plugins.admin.identity import CSRF_HEADER, StoredSessions
from grok2api_plugins.admin.settings import AdminSettings

from .support import PASSWORD, auth

ENGINES = ["redis", "pgsql", "mysql"]


async def worker(gateway: Any, make_settings: Any, kind: str, url: str) -> TestClient:
    settings = make_settings(server={"storage_type": kind, "storage_url": url},
                             app={"trusted_proxies": ["127.0.0.1"]}, token={"reload_interval_sec": 0.1})
    client: TestClient = await gateway(f"storage_{kind}", "admin", settings=settings)
    settings.admin = AdminSettings(login_max_failures_per_address=2)  # type: ignore[attr-defined]
    return client


@pytest.mark.parametrize("kind", ENGINES)
async def test_sessions_and_throttle_across_workers(kind: str, request: pytest.FixtureRequest, gateway: Any,
                                                   make_settings: Any) -> None:
    url = request.getfixturevalue(f"{kind}_url")
    one = await worker(gateway, make_settings, kind, url)
    two = await worker(gateway, make_settings, kind, url)
    username = f"admin-{random_hex(6)}"
    address = {"X-Forwarded-For": f"198.18.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"}
    sessions = one.app[SESSIONS]
    assert isinstance(sessions, StoredSessions)
    await sessions.users.create(username, PASSWORD)
    credentials = {"username": username, "password": PASSWORD}

    resp = await one.post("/api/v1/admin/login", json=credentials, headers=address)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    token, csrf = body["token"], body["csrf_token"]
    assert (await two.get("/api/v1/admin/session", headers=auth(token))).status == 200  # stored, shared
    cookie = {"Cookie": f"grok2api_session={token}"}
    assert (await two.post("/api/v1/admin/keys", json={}, headers=cookie)).status == 403
    assert (await two.post("/api/v1/admin/keys", json={}, headers={**cookie, CSRF_HEADER: csrf})).status == 200

    for _ in range(2):
        wrong = await one.post("/api/v1/admin/login", json={**credentials, "password": "nope"}, headers=address)
        assert wrong.status == 401
    refused = await two.post("/api/v1/admin/login", json=credentials, headers=address)
    assert refused.status == 429 and "Retry-After" in refused.headers

    other = (await two.post("/api/v1/admin/login", json=credentials)).status
    assert other == 200  # another address is not throttled
    changed = await two.post("/api/v1/admin/password", headers=auth(token),
                             json={"current_password": PASSWORD, "new_password": PASSWORD + "-2"})
    assert changed.status == 200
    assert (await one.get("/api/v1/admin/session", headers=auth(token))).status == 401  # ended everywhere
    fresh = (await changed.json())["token"]
    assert (await one.post("/api/v1/admin/logout", headers=auth(fresh))).status == 200
    assert (await two.get("/api/v1/admin/session", headers=auth(fresh))).status == 401
