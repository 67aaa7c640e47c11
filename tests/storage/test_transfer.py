"""``grok2api storage export|import``: every record, counter and log moves between engines."""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

import orjson
import pytest

from grok2api.storage import NS_SESSIONS
from grok2api.storage.transfer import export_to, import_from, run
from grok2api.testing.engines import storage_settings


@pytest.mark.parametrize("target", ["pgsql", "redis", "mysql"])
async def test_sqlite_to_a_server_engine_and_back(make_storage, tmp_path: Path, target: str, capsys) -> None:
    source = await make_storage("local")
    accounts = {f"tok-{i}": {"token": f"tok-{i}", "pool": "ssoBasic", "quota": i, "tags": []} for i in range(700)}
    await source.put_many("accounts", accounts)
    await source.put("config", "grok", {"temporary": False})
    await source.put("plugin:hello", "state", {"n": 1})
    await source.put(NS_SESSIONS, "s", {"user": "admin"}, ttl=600)
    await source.incr("key_usage:2026-03-01", "h1", {"chat_used": 3, "image_used": 2})
    for i in range(3):
        await source.append_log("requests", {"i": i})

    dump = tmp_path / "export.jsonl"
    assert await run(argparse.Namespace(action="export", file=dump), source) == 0
    printed = capsys.readouterr().out
    assert "accounts: 700" in printed and "counters key_usage:2026-03-01: 1" in printed and "log requests: 3" in printed
    assert orjson.loads(dump.read_bytes().splitlines()[0])["format"] == "grok2api-storage-export"

    # a fresh database of the target engine (the session server is shared: its own namespace names)
    suffix = uuid.uuid4().hex[:8]
    renamed = dump.read_text().replace("plugin:hello", f"plugin:hello-{suffix}").replace(
        "key_usage:2026-03-01", f"key_usage:{suffix}").replace('"requests"', f'"requests-{suffix}"')
    dump.write_text(renamed)
    server = await make_storage(target, storage_settings(target, tmp_path / "target"))
    counts = await import_from(server, dump)
    assert counts["accounts"] == 700 and counts[f"log requests-{suffix}"] == 3
    assert NS_SESSIONS not in counts
    assert {k: v for k, v in (await server.list("accounts")).items() if k in accounts} == accounts
    assert await server.get(f"plugin:hello-{suffix}", "state") == {"n": 1}
    assert await server.counters(f"key_usage:{suffix}", "h1") == {"chat_used": 3, "image_used": 2}
    assert [e.data for e in await server.read_log(f"requests-{suffix}")] == [{"i": 2}, {"i": 1}, {"i": 0}]

    await import_from(server, dump)  # importing again changes nothing: counters are set, not added
    assert await server.counters(f"key_usage:{suffix}", "h1") == {"chat_used": 3, "image_used": 2}

    back = tmp_path / "back.jsonl"
    await export_to(server, back)
    restored = await make_storage("local", storage_settings("local", tmp_path / "restored"))
    await import_from(restored, back)
    assert await restored.list("accounts") == await server.list("accounts")


async def test_a_file_that_is_not_an_export_is_refused(make_storage, tmp_path: Path, capsys) -> None:
    storage = await make_storage("local")
    wrong = tmp_path / "token.json"
    wrong.write_text('{"ssoBasic": []}\n')
    assert await run(argparse.Namespace(action="import", file=wrong), storage) == 1
    assert "not a grok2api storage export" in capsys.readouterr().err
    missing = tmp_path / "missing.jsonl"
    assert await run(argparse.Namespace(action="import", file=missing), storage) == 1
    assert await storage.namespaces() == []
