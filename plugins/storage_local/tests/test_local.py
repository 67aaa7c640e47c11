"""SQLite specifics: the default file, WAL mode, an explicit sqlite URL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from grok2api.api import ServerSettings, Settings, StorageError
from grok2api_plugins.storage_local.engine import LocalStorage


async def test_default_file_in_wal_mode(tmp_path: Path) -> None:
    storage = LocalStorage(Settings(data_dir=tmp_path / "data", server=ServerSettings(storage_url="redis://x")))
    await storage.open()
    try:
        await storage.put("accounts", "a", {})
        assert await storage.transaction(lambda conn: conn.execute(text("PRAGMA journal_mode")).scalar()) == "wal"
    finally:
        await storage.close()
    assert (tmp_path / "data" / "grok2api.db").is_file()


async def test_an_explicit_sqlite_url(tmp_path: Path) -> None:
    path = tmp_path / "elsewhere.db"
    storage = LocalStorage(Settings(data_dir=tmp_path / "data", server=ServerSettings(storage_url=f"sqlite:///{path}")))
    await storage.open()
    await storage.close()
    assert path.is_file() and not (tmp_path / "data" / "grok2api.db").exists()


async def test_an_in_memory_database_is_refused(tmp_path: Path) -> None:
    storage = LocalStorage(Settings(data_dir=tmp_path, server=ServerSettings(storage_url="sqlite:///:memory:")))
    with pytest.raises(StorageError, match="must name a file"):
        await storage.open()


async def test_a_feed_from_before_changes_named_their_writer_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as old:  # the table as versions before the origin column made it
        old.execute("CREATE TABLE g2a_changes (seq BIGINT PRIMARY KEY, ns VARCHAR(128) NOT NULL, "
                    "key VARCHAR(512) NOT NULL, op VARCHAR(16) NOT NULL, at_ms BIGINT NOT NULL)")
        old.execute("INSERT INTO g2a_changes VALUES (1, 'accounts', 'a', 'put', 0)")
        old.execute("CREATE TABLE g2a_meta (name VARCHAR(64) PRIMARY KEY, value BIGINT NOT NULL)")
        old.executemany("INSERT INTO g2a_meta VALUES (?, ?)", [("schema_version", 1), ("feed_seq", 1),
                                                               ("feed_trimmed", 0)])
    storage = LocalStorage(Settings(data_dir=tmp_path, server=ServerSettings(storage_url=f"sqlite:///{path}")))
    await storage.open()
    try:
        await storage.put("accounts", "b", {})
        assert [(c.key, c.origin) for c in await storage.changes_since(0)] == [("a", ""), ("b", storage.origin)]
    finally:
        await storage.close()
