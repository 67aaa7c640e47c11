"""Versioned migrations: a database written by the previous release is upgraded in place, once.

The databases under ``fixtures/`` were written by the code of main before migrations
existed (``fixtures/make_fixtures.py``, commit in ``fixtures/expected.json``): the SQLite
file itself, SQL dumps for PostgreSQL and MariaDB, and every Redis key. Each test loads
one into a fresh database of its engine's test server.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from grok2api.config.settings import Settings
from grok2api.ids import account_id
from grok2api.storage import Storage
from grok2api.storage.migrations import DATA_VERSION, MIGRATIONS, MIGRATIONS_KEY, NS_STORAGE, migrate
from grok2api.testing.engines import storage_factory
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.pytest_plugin import GatewayFactory
from grok2api.web.appkeys import KEYS, POOL, SETTINGS, STORAGE

from .old_release import EXPECTED, FIRST, restore

ENGINES = ["local", "redis", "pgsql", "mysql"]


@pytest.fixture
def old_database(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``await old_database(kind)``: the environment points the gateway at a restored fixture."""

    async def make(kind: str) -> str:
        url = await restore(kind, data_dir)
        monkeypatch.setenv("SERVER_STORAGE_TYPE", kind)
        monkeypatch.setenv("SERVER_STORAGE_URL", url)
        return url

    return make


async def _start(gateway: GatewayFactory, settings: Settings, kind: str) -> TestClient:
    return await gateway(f"storage_{kind}", "chat", settings=settings)


async def _check_everything_kept(storage: Storage, client: TestClient) -> None:
    app = client.app
    pool, tokens = app[POOL], EXPECTED["tokens"]
    assert {a.token for a in pool.accounts()} == set(tokens)
    for token, fields in tokens.items():
        account = pool.get(token)
        assert account is not None
        assert account.pool == fields["pool"]
        assert account.status.value == fields.get("status", "active")
        assert account.note == fields.get("note", "")
        assert list(account.tags) == fields.get("tags", [])
    first = pool.get(FIRST)
    assert first is not None and first.use_count == 7 and first.failures == {"rate_limited": 2}
    assert await app[KEYS].authenticate(EXPECTED["key"]) is not None
    assert await storage.counters("key_usage:2026-12-01", "fixture-usage") == {"chat": 3}
    assert app[SETTINGS].grok.cf_clearance == EXPECTED["cf_clearance"]
    jobs = await storage.list("admin_jobs")
    assert [job["kind"] for job in jobs.values()] == ["disable"]
    items = await storage.list("admin_job_items")
    assert list(items.values()) == [{"ids": [account_id(FIRST)]}]  # by token before ``job_ids``
    video = await storage.get("video_jobs", "video_fixture0001")
    assert video is not None and video["status"] == "completed" and video["prompt"] == "a fixture"
    assert "admin" in await storage.list("admin_users")
    assert [entry.data["model"] for entry in await storage.read_log("requests")] == ["grok-4"]
    assert await storage.counters("stats:2026-12-01T10", "grok-4") == {"requests": 1, "ok": 1}
    state = await storage.get(NS_STORAGE, MIGRATIONS_KEY)
    assert state is not None and state["version"] == DATA_VERSION
    assert [step["version"] for step in state["applied"]] == [m.version for m in MIGRATIONS]


@pytest.mark.parametrize("kind", ENGINES)
async def test_a_database_of_the_previous_release_is_upgraded_and_keeps_everything(
        kind: str, old_database: Any, gateway: GatewayFactory, make_settings: Any, fake_grok: FakeGrok) -> None:
    await old_database(kind)
    settings = make_settings(grok=fake_grok.grok_settings())
    client = await _start(gateway, settings, kind)
    storage = client.app[STORAGE]
    assert storage.schema_version == (1 if kind == "redis" else 2)
    await _check_everything_kept(storage, client)
    answer = await client.post("/v1/chat/completions", headers={"Authorization": f"Bearer {EXPECTED['key']}"},
                               json={"model": "grok-4", "messages": [{"role": "user", "content": "hi"}]})
    assert answer.status == 200, await answer.text()
    state = await storage.get(NS_STORAGE, MIGRATIONS_KEY)
    await client.close()

    again = await _start(gateway, make_settings(grok=fake_grok.grok_settings()), kind)  # the next start
    assert await again.app[STORAGE].get(NS_STORAGE, MIGRATIONS_KEY) == state  # nothing ran twice
    await again.close()


@pytest.mark.parametrize("kind", ENGINES)
async def test_workers_starting_together_migrate_once(kind: str, old_database: Any, make_settings: Any) -> None:
    await old_database(kind)
    settings = make_settings()
    workers = [storage_factory(kind)(settings) for _ in range(3)]
    await asyncio.gather(*(worker.open() for worker in workers))
    try:
        applied = await asyncio.gather(*(migrate(worker) for worker in workers))
        assert sorted(v for versions in applied for v in versions) == [m.version for m in MIGRATIONS]
        state = await workers[0].get(NS_STORAGE, MIGRATIONS_KEY)
        assert state is not None
        assert [step["version"] for step in state["applied"]] == [m.version for m in MIGRATIONS]
        assert len({step["by"] for step in state["applied"]}) == 1  # all by one worker
    finally:
        for worker in workers:
            await worker.close()


async def test_a_newer_data_version_is_refused(data_dir: Path, make_storage: Any) -> None:
    storage = await make_storage("local")
    await migrate(storage)
    await storage.put(NS_STORAGE, MIGRATIONS_KEY, {"version": DATA_VERSION + 1, "applied": []})
    with pytest.raises(Exception, match=f"data version {DATA_VERSION + 1}, newer"):
        await migrate(storage)


async def test_old_sessions_and_overlong_stats_keys_are_removed(make_storage: Any) -> None:
    storage = await make_storage("local")
    await storage.put("sessions", "old", {"username": "admin"}, ttl=3600)
    await storage.put("sessions", "new", {"username": "admin", "created_at": 1, "last_seen": 1, "epoch": "e"},
                      ttl=3600)
    await storage.incr("stats:2026-01-01T00", "m" * 300, {"requests": 1})
    await storage.incr("stats:2026-01-01T00", "grok-4", {"requests": 2})
    await migrate(storage)
    assert set(await storage.list("sessions")) == {"new"}
    assert await storage.counters_many("stats:2026-01-01T00") == {"grok-4": {"requests": 2}}
