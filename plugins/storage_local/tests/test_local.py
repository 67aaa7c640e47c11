"""SQLite specifics: the default file, WAL mode, an explicit sqlite URL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from grok2api.config import ServerSettings, Settings
from grok2api.storage import StorageError
from grok2api_plugins.storage_local.engine import LocalStorage


async def test_default_file_in_wal_mode(tmp_path: Path) -> None:
    storage = LocalStorage(Settings(data_dir=tmp_path / "data", server=ServerSettings(storage_url="redis://x")))
    await storage.open()
    try:
        await storage.put("accounts", "a", {})
        async with storage.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
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
