"""PostgreSQL specifics: the original's URL forms, and LISTEN/NOTIFY waking other workers at once."""

from __future__ import annotations

import pytest

from grok2api.api import ServerSettings, Settings
from grok2api.testing.storage_conformance import assert_notified_promptly
from grok2api_plugins.storage_pgsql.engine import PgsqlStorage


def storage(url: str) -> PgsqlStorage:
    return PgsqlStorage(Settings(server=ServerSettings(storage_type="pgsql", storage_url=url)))


@pytest.mark.parametrize("scheme", ["postgresql+asyncpg", "postgresql", "postgres", "postgresql+psycopg"])
async def test_url_forms(pgsql_url: str, scheme: str) -> None:
    engine = storage(pgsql_url.replace("postgresql+asyncpg", scheme, 1))
    assert engine.url().drivername == "postgresql+asyncpg"
    await engine.open()
    await engine.close()


def test_libpq_sslmode_becomes_asyncpg_ssl() -> None:
    url = storage("postgres://u:p@db.internal:5432/grok2api?sslmode=require").url()
    assert dict(url.query) == {"ssl": "require"}


async def test_notify_wakes_another_worker_before_any_poll(pgsql_url: str) -> None:
    waiting, writing = storage(pgsql_url), storage(pgsql_url)
    await waiting.open()
    await writing.open()
    try:
        await assert_notified_promptly(waiting, writing)
        assert waiting.poll_interval == 5.0  # LISTEN is up: polling slowed down
    finally:
        await waiting.close()
        await writing.close()
