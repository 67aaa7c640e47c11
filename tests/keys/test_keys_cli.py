"""``grok2api keys create|list|update|delete`` as functions on parsed arguments."""

from __future__ import annotations

import argparse

import orjson

from grok2api.keys import cli as keys_cli
from grok2api.keys.service import KeyService


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="grok2api")
    keys_cli.arguments(parser.add_subparsers(dest="command", required=True).add_parser("keys"))
    return parser.parse_args(["keys", *argv])


async def test_create_list_update_delete(make_storage, capsys) -> None:
    storage = await make_storage("local")
    keys = KeyService(storage, storage.settings)  # type: ignore[attr-defined]

    assert await keys_cli.run(parse("create", "--name", "team", "--chat", "10", "--video", "0"), keys) == 0
    out = capsys.readouterr().out
    key = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("key: "))
    assert "shown only now" in out and await keys.authenticate(key) is not None

    assert await keys_cli.run(parse("list"), keys) == 0
    listed = capsys.readouterr().out
    assert f"{key[:6]}...{key[-4:]}" in listed and "chat=0/10" in listed and "video=0/0" in listed
    assert key not in listed

    assert await keys_cli.run(parse("update", key, "--deactivate", "--chat", "-1"), keys) == 0
    assert "inactive" in capsys.readouterr().out
    assert await keys.authenticate(key) is None

    assert await keys_cli.run(parse("list", "--json"), keys) == 0
    (row,) = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["is_active"] is False and row["chat_limit"] == -1 and row["video_limit"] == 0

    assert await keys_cli.run(parse("create", "--key", key), keys) == 1
    assert "already exists" in capsys.readouterr().err
    assert await keys_cli.run(parse("delete", row["id"]), keys) == 0
    assert await keys_cli.run(parse("delete", key), keys) == 1
    assert "no such key" in capsys.readouterr().err
    assert await keys_cli.run(parse("update", "sk-unknown", "--activate"), keys) == 1


async def test_access_limits_from_the_command_line(make_storage, capsys) -> None:
    storage = await make_storage("local")
    keys = KeyService(storage, storage.settings)  # type: ignore[attr-defined]

    assert await keys_cli.run(parse("create", "--rpm", "30", "--concurrency", "2", "--expires-at", "4000000000",
                                    "--models", "grok-4, grok-3"), keys) == 0
    key = next(line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines() if line.startswith("key: "))
    assert await keys_cli.run(parse("list"), keys) == 0
    listed = capsys.readouterr().out
    assert "rpm=30  concurrency=2  expires_at=4000000000  models=grok-4,grok-3" in listed

    assert await keys_cli.run(parse("update", key, "--rpm", "-1", "--expires-at", "never", "--models", ""), keys) == 0
    (row,) = await keys.list_rows()
    assert (row["rpm"], row["concurrency"], row["expires_at"], row["models"]) == (-1, 2, None, [])

    assert await keys_cli.run(parse("update", key, "--concurrency", "-4"), keys) == 2
    assert "'concurrency' must be" in capsys.readouterr().err
    assert await keys_cli.run(parse("update", key, "--expires-at", "1"), keys) == 0
    assert await keys_cli.run(parse("list"), keys) == 0
    assert "expired" in capsys.readouterr().out
