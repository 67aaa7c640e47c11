"""Sessions, CSRF, the login throttle and jobs on every server engine, across two workers.

Server engines keep the data of earlier tests, so each test makes its own admin user
and logs in from its own (forwarded) address."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable

import pytest

from grok2api.api import POOL, SESSIONS, STORAGE, Settings, account_id, random_hex
from grok2api.testing.pytest_plugin import GatewayFactory
from grok2api_plugins.admin.identity import CSRF_HEADER, StoredSessions
from grok2api_plugins.admin.jobs import NS_JOBS, Jobs
from grok2api_plugins.admin.settings import AdminSettings

from .support import PASSWORD, Client, auth

ENGINES = ["redis", "pgsql", "mysql"]


async def worker(gateway: GatewayFactory, make_settings: Callable[..., Settings], kind: str,
                 url: str) -> Client:
    settings = make_settings(server={"storage_type": kind, "storage_url": url},
                             app={"trusted_proxies": ["127.0.0.1"]}, token={"reload_interval_sec": 0.1})
    client: Client = await gateway(f"storage_{kind}", "admin", settings=settings)
    settings.admin = AdminSettings(login_max_failures_per_address=2)  # type: ignore[attr-defined]
    return client


@pytest.mark.parametrize("kind", ENGINES)
async def test_sessions_and_throttle_across_workers(kind: str, request: pytest.FixtureRequest, gateway: GatewayFactory,
                                                   make_settings: Callable[..., Settings]) -> None:
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


async def _until(check: Callable[[], Awaitable[bool]], seconds: float = 15) -> None:
    for _ in range(int(seconds / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("timed out")


@pytest.mark.parametrize("kind", ENGINES)
async def test_jobs_across_workers_and_a_dead_worker(kind: str, request: pytest.FixtureRequest, gateway: GatewayFactory,
                                                    make_settings: Callable[..., Settings]) -> None:
    url = request.getfixturevalue(f"{kind}_url")
    one = await worker(gateway, make_settings, kind, url)
    two = await worker(gateway, make_settings, kind, url)
    sessions = one.app[SESSIONS]
    assert isinstance(sessions, StoredSessions)
    username = f"admin-{random_hex(6)}"
    await sessions.users.create(username, PASSWORD)
    resp = await one.post("/api/v1/admin/login", json={"username": username, "password": PASSWORD})
    h = auth((await resp.json())["token"])
    tokens = [f"engine-{random_hex(6)}-{n}-" + "e" * 24 for n in range(4)]
    assert (await one.post("/api/v1/admin/tokens/add", json={"tokens": tokens}, headers=h)).status == 200

    async def both_know() -> bool:
        return all(w.app[POOL].get(t) is not None for w in (one, two) for t in tokens)

    await _until(both_know)
    created = await two.post("/api/v1/admin/jobs", json={"kind": "disable", "tokens": tokens}, headers=h)
    job_id = (await created.json())["job"]["id"]

    async def finished(job: str = job_id) -> bool:
        state = (await (await one.get(f"/api/v1/admin/jobs/{job}", headers=h)).json())["job"]["state"]
        return bool(state == "finished")

    await _until(finished)
    storage = one.app[STORAGE]
    dead = await Jobs(storage).create("enable", [account_id(t) for t in tokens], username)
    await storage.patch(NS_JOBS, dead["id"], {"state": "running", "worker": "dead"})
    assert await storage.acquire_lock(f"admin:job:{dead['id']}", "dead-worker", 1.0)
    await _until(lambda: finished(dead["id"]))
    final = await storage.get(NS_JOBS, dead["id"])
    assert final is not None and final["resumed"] == 1 and final["done"] == 4
