"""Every engine: chosen by name through its plugin; a missing, malformed or unreachable URL is a clear StorageError."""

from __future__ import annotations

from pathlib import Path

import pytest

from grok2api.config.settings import ServerSettings, Settings
from grok2api.storage import StorageError
from grok2api.testing.engines import free_port, storage_factory

SERVERS = {
    "redis": "redis://user:secret@127.0.0.1:{port}/0",
    "pgsql": "postgresql://user:secret@127.0.0.1:{port}/postgres",
    "mysql": "mysql://user:secret@127.0.0.1:{port}/grok2api",
}


def settings(kind: str, url: str, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, server=ServerSettings(storage_type=kind, storage_url=url))


@pytest.mark.parametrize("kind", sorted(SERVERS))
async def test_a_missing_url_names_the_setting(kind: str, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match=f"SERVER_STORAGE_URL is required with SERVER_STORAGE_TYPE={kind}"):
        await storage_factory(kind)(settings(kind, "  ", tmp_path)).open()


@pytest.mark.parametrize(("kind", "url"), [
    ("redis", "redis://127.0.0.1:notaport/0"),
    ("redis", "http://127.0.0.1:6379"),
    ("pgsql", "mysql://root@127.0.0.1/db"),
    ("pgsql", "postgresql://u:secret@127.0.0.1:notaport/db"),
    ("pgsql", "postgresql://u@127.0.0.1:5432"),
    ("mysql", "redis://127.0.0.1/0"),
    ("mysql", "::not a url::"),
])
async def test_a_malformed_url_is_refused_without_leaking_the_password(kind: str, url: str, tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="SERVER_STORAGE_URL") as caught:
        await storage_factory(kind)(settings(kind, url, tmp_path)).open()
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("kind", sorted(SERVERS))
async def test_an_unreachable_server_fails_open(kind: str, tmp_path: Path) -> None:
    url = SERVERS[kind].format(port=free_port())
    with pytest.raises(StorageError, match="cannot be opened") as caught:
        await storage_factory(kind)(settings(kind, url, tmp_path)).open()
    assert "secret" not in str(caught.value)


async def test_local_storage_cannot_use_a_file_as_its_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError, match="cannot create data directory"):
        await storage_factory("local")(settings("local", "", blocker / "data")).open()
