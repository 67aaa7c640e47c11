"""MySQL specifics: the original's URL forms and utf8mb4."""

from __future__ import annotations

import pytest

from grok2api.api import ServerSettings, Settings
from grok2api_plugins.storage_mysql.engine import MysqlStorage


def storage(url: str) -> MysqlStorage:
    return MysqlStorage(Settings(server=ServerSettings(storage_type="mysql", storage_url=url)))


@pytest.mark.parametrize("scheme", ["mysql+aiomysql", "mysql", "mariadb", "mysql+asyncmy"])
async def test_url_forms(mysql_url: str, scheme: str) -> None:
    engine = storage(mysql_url.replace("mysql+aiomysql", scheme, 1))
    url = engine.url()
    assert url.drivername == "mysql+aiomysql" and url.query["charset"] == "utf8mb4"
    await engine.open()
    try:
        await engine.put("accounts", "emoji", {"note": "🙂 ünïcode"})
        assert await engine.get("accounts", "emoji") == {"note": "🙂 ünïcode"}
    finally:
        await engine.close()


def test_an_explicit_charset_is_kept() -> None:
    assert storage("mysql://u@h/db?charset=utf8").url().query["charset"] == "utf8"
