"""``grok2api tokens …``: the command functions on a started pool, parsed as the CLI parses them."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import pytest

from grok2api.pool import Status, TokenPool, cli
from grok2api.testing.fake_grok import FakeGrok


async def tokens(pool: TokenPool, *argv: str) -> int:
    parser = argparse.ArgumentParser(prog="grok2api")
    cli.arguments(parser.add_subparsers(dest="command").add_parser("tokens"))
    return await cli.run(parser.parse_args(["tokens", *argv]), pool)


async def test_add_list_and_export(pool: TokenPool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await tokens(pool, "add", "sso=token-aaaaaaaaaaaa", "token-bbbbbbbbbbbb", "token-aaaaaaaaaaaa",
                        "--pool", "ssoSuper") == 0
    assert "added 2, merged 1, skipped 0" in capsys.readouterr().out
    assert await tokens(pool, "list") == 0
    listing = capsys.readouterr().out
    assert "toke…aaaa" in listing and "ssoSuper" in listing and "token-aaaaaaaaaaaa" not in listing
    assert "2 account(s)" in listing
    assert await tokens(pool, "export", str(tmp_path / "out.txt")) == 0
    assert (tmp_path / "out.txt").read_text().split() == ["token-aaaaaaaaaaaa", "token-bbbbbbbbbbbb"]
    assert await tokens(pool, "export", str(tmp_path / "out.json")) == 0
    exported = orjson.loads((tmp_path / "out.json").read_bytes())
    assert [r["token"] for r in exported["ssoSuper"]] == ["token-aaaaaaaaaaaa", "token-bbbbbbbbbbbb"]


async def test_import_a_text_file_and_the_originals_token_json(pool: TokenPool, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "tokens.txt"
    text.write_text("# accounts\nsso=one-token\n\ntwo-token\none-token\nnot a token\n")
    assert await tokens(pool, "import", str(text), "--pool", "ssoBasic") == 0
    assert "added 2, merged 1, skipped 1" in capsys.readouterr().out
    legacy = tmp_path / "token.json"
    legacy.write_bytes(orjson.dumps({
        "ssoBasic": ["two-token", {"token": "three-token", "status": "invalid", "quota": 3, "mystery": True}],
        "ssoSuper": [{"token": "sso=four-token", "heavy_quota": 2, "note": "big"}],
    }))
    assert await tokens(pool, "import", str(legacy)) == 0
    assert "added 2, merged 1" in capsys.readouterr().out
    three, four = pool.get("three-token"), pool.get("four-token")
    assert (three.status, three.quota, three.extra) == (Status.EXPIRED, 3, {"mystery": True})
    assert (four.pool, four.heavy_quota, four.note) == ("ssoSuper", 2, "big")
    assert await tokens(pool, "list", "--status", "expired", "--json") == 0
    rows = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["status"], r["quota"]) for r in rows] == [("expired", 3)] and rows[0]["token"] == "***en"


async def test_a_bad_file_is_reported(pool: TokenPool, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"ssoBasic": "not a list"}')
    assert await tokens(pool, "import", str(bad)) == 1
    assert "cannot import" in capsys.readouterr().err


async def test_remove_and_refresh(pool: TokenPool, fake_grok: FakeGrok, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    for token in ("one-token", "two-token", "three-token"):
        fake_grok.add_account(token)
    await pool.add(["one-token", "two-token", "three-token"])
    listed = tmp_path / "remove.txt"
    listed.write_text("three-token\n")
    assert await tokens(pool, "remove", "sso=one-token", "--file", str(listed)) == 0
    assert "removed 2" in capsys.readouterr().out
    assert await tokens(pool, "refresh") == 0
    assert "refreshed 1: 1 ok, 0 failed (finished)" in capsys.readouterr().out
    fake_grok.inject("blocked", account="two-token", endpoint="rate_limits")
    assert await tokens(pool, "refresh", "two-token") == 1
    out = capsys.readouterr().out
    assert "0 ok, 1 failed" in out and "blocked" in out
