"""Credentials encrypted at rest, on every engine: nothing readable in the raw database, the
gateway still serves, a plain database is encrypted on its first start with a key, the key
rotates, and a wrong or missing key stops start-up with one clear line.

Each engine's case starts from the previous release's plain-text database
(``fixtures/``, as in ``test_migrations.py``), so the accounts carry use counts, the config
holds ``cf_clearance`` and the database has every namespace a real one has.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
import redis.asyncio as redis
from aiohttp.test_utils import TestClient

from grok2api.ids import account_id
from grok2api.storage import NS_ACCOUNTS
from grok2api.storage.credentials import (
    KEY_ENV,
    KEY_FILE,
    NEW_KEY_FILE,
    CredentialKey,
    CredentialKeyError,
    load_key,
    parse_key,
    sealed_kid,
    write_key_file,
)
from grok2api.storage.migrations import NS_STORAGE
from grok2api.storage.sealed import CREDENTIALS_KEY, SealedStorage
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.pytest_plugin import GatewayFactory
from grok2api.web.appkeys import POOL, SETTINGS, STORAGE
from grok2api_plugins.admin.jobs import NS_ITEMS, NS_JOBS, JobRunner, Jobs

from .old_release import EXPECTED, FIRST, restore

ENGINES = ["local", "redis", "pgsql", "mysql"]
TOKENS: list[str] = list(EXPECTED["tokens"])
SECRET = bytes(range(32))
OTHER = bytes(range(1, 33))
CHAT = {"model": "grok-4", "messages": [{"role": "user", "content": "hi"}]}


def _server(url: str) -> tuple[str, int, str]:
    host, port, database = re.search(r"@([\d.]+):(\d+)/([^/?]+)", url).groups()  # type: ignore[union-attr]
    return host, int(port), database


async def raw_dump(kind: str, url: str, data_dir: Path) -> bytes:
    """Everything the engine holds, as bytes, read past grok2api (SQLite: the files themselves)."""
    if kind == "local":
        return b"".join(path.read_bytes() for path in sorted(data_dir.glob("grok2api.db*")))
    if kind == "redis":
        parts = []
        async with redis.from_url(url) as client:
            for key in await client.keys("*"):
                kind_of = (await client.type(key)).decode()
                value: Any = {"string": client.get, "hash": client.hgetall, "set": client.smembers,
                              "zset": lambda k: client.zrange(k, 0, -1)}[kind_of](key)
                parts.append(key + b" " + repr(await value).encode())
        return b"\n".join(parts)
    host, port, database = _server(url)
    tables = ("g2a_records", "g2a_counters", "g2a_changes", "g2a_locks", "g2a_log", "g2a_meta")
    if kind == "pgsql":
        conn = await asyncpg.connect(host=host, port=port, user="postgres", database=database)
        rows = [await conn.fetch(f"SELECT * FROM {table}") for table in tables]
        await conn.close()
        return repr([[tuple(r) for r in table] for table in rows]).encode()
    import aiomysql

    mysql = await aiomysql.connect(host=host, port=port, user="root", db=database, autocommit=True)
    dumped = []
    async with mysql.cursor() as cur:
        for table in tables:
            await cur.execute(f"SELECT * FROM {table}")
            dumped.append(await cur.fetchall())
    await mysql.ensure_closed()  # gone before the CLI runs: its OPTIMIZE TABLE waits for readers
    return repr(dumped).encode()


def assert_no_credentials(raw: bytes) -> None:
    for token in TOKENS:
        assert token.encode() not in raw, "a token is stored in plain text"
        assert token.split(".")[1].encode() not in raw  # nor any long piece of it
    assert EXPECTED["cf_clearance"].encode() not in raw
    assert b"g2a-sealed:1:" in raw


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "grok2api", *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.fixture
def engine_env(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``await engine_env(kind)``: a restored plain fixture; the environment of a CLI run against it."""

    async def make(kind: str) -> tuple[str, dict[str, str]]:
        url = await restore(kind, data_dir)
        monkeypatch.setenv("SERVER_STORAGE_TYPE", kind)
        monkeypatch.setenv("SERVER_STORAGE_URL", url)
        monkeypatch.delenv(KEY_ENV, raising=False)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GROK2API_", "SERVER_"))}
        env.update(DATA_DIR=str(data_dir), SERVER_STORAGE_TYPE=kind, SERVER_STORAGE_URL=url,
                   GROK2API_DISABLE_PLUGINS="admin,video,alerts,hello", LOG_LEVEL="INFO")
        return url, env

    return make


async def _chat(client: TestClient) -> None:
    answer = await client.post("/v1/chat/completions", json=CHAT,
                               headers={"Authorization": f"Bearer {EXPECTED['key']}"})
    assert answer.status == 200, await answer.text()


def _upstream(fake_grok: FakeGrok) -> FakeGrok:
    """The fake knows only the fixture's accounts and wants the fixture's cf_clearance: a 200
    means the gateway opened both."""
    for token in TOKENS:
        fake_grok.add_account(token)
    fake_grok.require_clearance = EXPECTED["cf_clearance"]
    return fake_grok


@pytest.mark.parametrize("kind", ENGINES)
async def test_a_plain_database_is_encrypted_serves_and_rotates(
        kind: str, engine_env: Any, data_dir: Path, gateway: GatewayFactory, make_settings: Any,
        fake_grok: FakeGrok) -> None:
    url, env = await engine_env(kind)
    _upstream(fake_grok)
    assert EXPECTED["tokens"] and FIRST.encode() in await raw_dump(kind, url, data_dir)  # plain before
    old = write_key_file(data_dir / KEY_FILE, SECRET)

    # first start with a key: everything sealed, nothing lost, chat served
    client = await gateway(f"storage_{kind}", "chat", settings=make_settings(grok=fake_grok.grok_settings()))
    storage = client.app[STORAGE]
    assert isinstance(storage, SealedStorage) and storage.key.kid == old.kid
    pool = client.app[POOL]
    assert {a.token for a in pool.accounts()} == set(TOKENS)
    first = pool.get(FIRST)
    assert first is not None and first.use_count == 7 and first.failures == {"rate_limited": 2}
    assert client.app[SETTINGS].grok.cf_clearance == EXPECTED["cf_clearance"]
    await _chat(client)
    assert (await storage.get(NS_STORAGE, CREDENTIALS_KEY) or {})["kid"] == old.kid
    assert list((await storage.list(NS_ITEMS)).values()) == [{"ids": [account_id(FIRST)]}]  # was by token
    await client.close()
    raw = await raw_dump(kind, url, data_dir)
    assert_no_credentials(raw)

    # rotate: the old key opens nothing, the new one everything
    done = cli(env, "storage", "rotate-key")
    assert done.returncode == 0, done.stderr
    assert "re-encrypted from key id" in done.stdout and str(data_dir / KEY_FILE) in done.stdout
    new = load_key(data_dir, {})
    assert new is not None and new.kid != old.kid and not (data_dir / NEW_KEY_FILE).exists()
    raw = await raw_dump(kind, url, data_dir)
    assert_no_credentials(raw)
    for sealed in re.findall(rb"g2a-sealed:1:[0-9a-f]+:[A-Za-z0-9+/=]+", raw):
        assert sealed_kid(sealed.decode()) == new.kid
        with pytest.raises(CredentialKeyError):
            old.unseal(sealed.decode(), "anywhere")
    for line in (done.stdout + done.stderr).splitlines():  # nor did the key reach any output
        assert base64.b64encode(SECRET).decode() not in line and SECRET.hex() not in line
    key_text = (data_dir / KEY_FILE).read_text().strip()
    assert key_text not in done.stdout + done.stderr
    assert (data_dir / KEY_FILE).stat().st_mode & 0o777 == 0o600

    client = await gateway(f"storage_{kind}", "chat", settings=make_settings(grok=fake_grok.grok_settings()))
    assert {a.token for a in client.app[POOL].accounts()} == set(TOKENS)
    await _chat(client)
    await client.close()

    # the old key, or none, stops start-up with one clear line
    wrong = cli({**env, KEY_ENV: base64.b64encode(SECRET).decode()}, "tokens", "list")
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1, wrong.stderr
    assert f"encrypted with key id {new.kid}" in wrong.stderr and f"has id {old.kid}" in wrong.stderr
    assert "Traceback" not in wrong.stderr and base64.b64encode(SECRET).decode() not in wrong.stderr
    (data_dir / KEY_FILE).rename(data_dir / "elsewhere.key")
    missing = cli(env, "tokens", "list")
    assert missing.returncode == 2 and "credentials in this database are encrypted" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.parametrize("kind", ENGINES)
async def test_a_new_database_never_holds_a_token_in_plain_text(
        kind: str, engine_env: Any, data_dir: Path, gateway: GatewayFactory, make_settings: Any,
        fake_grok: FakeGrok, monkeypatch: pytest.MonkeyPatch) -> None:
    from grok2api.testing.engines import fresh_database

    url = "" if kind == "local" else await fresh_database(kind)
    monkeypatch.setenv("SERVER_STORAGE_TYPE", kind)
    monkeypatch.setenv("SERVER_STORAGE_URL", url)
    monkeypatch.setenv(KEY_ENV, SECRET.hex())
    _upstream(fake_grok)
    client = await gateway(f"storage_{kind}", "chat", settings=make_settings(grok=fake_grok.grok_settings()))
    app = client.app
    await app[POOL].add(TOKENS[:2])
    from grok2api.config.runtime import save
    from grok2api.web.app import config_sections
    from grok2api.web.appkeys import KEYS, REGISTRIES

    await save(app[STORAGE], app[SETTINGS], {"grok": {"cf_clearance": EXPECTED["cf_clearance"]}},
               config_sections(app[REGISTRIES]))
    await app[KEYS].create(name="c", key=EXPECTED["key"])
    for _ in range(3):
        await _chat(client)
    ids = [account_id(t) for t in TOKENS]  # TOKENS[2:] are not in the pool: they fail
    ran = await Jobs(app[STORAGE]).create("enable", ids, "admin")
    await JobRunner(app).run_once()
    assert (await app[STORAGE].get(NS_JOBS, ran["id"]) or {})["failed"] == len(TOKENS) - 2
    await Jobs(app[STORAGE]).create("disable", ids, "admin")  # left queued: its chunk stays
    assert len(await app[STORAGE].list(NS_ITEMS)) == 2  # that chunk and the first job's failed list
    await app[POOL].flush()
    counted = sum(a.use_count for a in app[POOL].accounts())
    assert counted == 3
    assert (await app[STORAGE].get(NS_ACCOUNTS, TOKENS[0]) or {})["token"] == TOKENS[0]
    await client.close()
    assert_no_credentials(await raw_dump(kind, url, data_dir))

    client = await gateway(f"storage_{kind}", "chat", settings=make_settings(grok=fake_grok.grok_settings()))
    assert sum(a.use_count for a in client.app[POOL].accounts()) == 3  # counts found again by index
    await client.close()


async def test_keys_are_read_in_every_written_form(data_dir: Path) -> None:
    kid = CredentialKey(SECRET, "x").kid
    for text in (SECRET.hex(), SECRET.hex().upper(), base64.b64encode(SECRET).decode(),
                 base64.urlsafe_b64encode(SECRET).decode().rstrip("="), f"  {SECRET.hex()}\n"):
        assert CredentialKey(parse_key(text, "k"), "k").kid == kid
    for bad in ("", "short", SECRET.hex()[:-2], base64.b64encode(bytes(16)).decode()):
        with pytest.raises(CredentialKeyError, match="32 random bytes") as caught:
            parse_key(bad, KEY_ENV)
        assert bad.strip() == "" or bad not in str(caught.value)  # the message never repeats the value
    path = data_dir / KEY_FILE
    write_key_file(path, SECRET)
    path.chmod(0o644)
    with pytest.raises(CredentialKeyError, match="chmod 600"):
        load_key(data_dir, {})
    path.chmod(0o600)
    key = load_key(data_dir, {})
    assert key is not None and key.kid == kid and SECRET.hex() not in repr(key)
    assert load_key(data_dir, {KEY_ENV: OTHER.hex()}).kid != kid  # type: ignore[union-attr]  # env wins


async def test_a_sealed_value_opens_only_with_its_key_and_in_its_place() -> None:
    key, other = CredentialKey(SECRET, "a"), CredentialKey(OTHER, "b")
    sealed = key.seal("secret-token", "accounts/h:1")
    assert "secret-token" not in sealed and key.seal("secret-token", "accounts/h:1") != sealed  # fresh nonce
    assert key.unseal(sealed, "accounts/h:1") == "secret-token"
    for opener, where in ((other, "accounts/h:1"), (key, "accounts/h:2")):
        with pytest.raises(CredentialKeyError):
            opener.unseal(sealed, where)
    assert key.index("t") == key.index("t") != other.index("t")


async def test_rotating_with_the_key_in_the_environment_leaves_the_new_key_for_the_operator(
        engine_env: Any, data_dir: Path) -> None:
    _, env = await engine_env("local")
    env[KEY_ENV] = SECRET.hex()
    assert cli(env, "tokens", "list").returncode == 0  # the first start seals it
    done = cli(env, "storage", "rotate-key")
    assert done.returncode == 0, done.stderr
    new = load_key(data_dir, {KEY_ENV: (data_dir / NEW_KEY_FILE).read_text()})
    assert new is not None and f"set {KEY_ENV}" in done.stdout and new.kid in done.stdout
    assert (data_dir / NEW_KEY_FILE).stat().st_mode & 0o777 == 0o600
    listed = cli({**env, KEY_ENV: (data_dir / NEW_KEY_FILE).read_text().strip()}, "tokens", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len([orjson.loads(line) for line in listed.stdout.splitlines()]) == len(TOKENS)


async def test_without_a_key_start_up_says_credentials_are_in_plain_text(engine_env: Any) -> None:
    _, env = await engine_env("local")
    done = cli(env, "-v", "tokens", "list")
    assert done.returncode == 0 and "stored in plain text" in done.stderr


async def test_a_rotation_cut_short_is_finished_by_the_next_start(
        engine_env: Any, data_dir: Path, gateway: GatewayFactory, make_settings: Any) -> None:
    await engine_env("local")
    old = write_key_file(data_dir / KEY_FILE, SECRET)
    client = await gateway("storage_local", settings=make_settings())  # sealed with the old key
    storage = client.app[STORAGE]
    assert isinstance(storage, SealedStorage)
    new = write_key_file(data_dir / NEW_KEY_FILE, OTHER)
    await storage.inner.put(NS_STORAGE, CREDENTIALS_KEY, {"kid": old.kid, "next": new.kid})  # killed here
    await client.close()

    client = await gateway("storage_local", settings=make_settings())
    storage = client.app[STORAGE]
    assert isinstance(storage, SealedStorage) and storage.key.kid == new.kid
    assert {a.token for a in client.app[POOL].accounts()} == set(TOKENS)
    assert (await storage.get(NS_STORAGE, CREDENTIALS_KEY) or {})["next"] is None
    assert load_key(data_dir, {}).kid == new.kid  # type: ignore[union-attr]  # the file now holds the new key
    assert not (data_dir / NEW_KEY_FILE).exists()
    await client.close()
    assert_no_credentials(await raw_dump("local", "", data_dir))


@pytest.mark.parametrize("kind", ENGINES)
async def test_workers_starting_together_with_a_key_seal_once(kind: str, engine_env: Any, data_dir: Path,
                                                               make_settings: Any) -> None:
    from grok2api.storage.migrations import migrate
    from grok2api.storage.sealed import prepare
    from grok2api.testing.engines import storage_factory
    from grok2api.web.app import SECRETS

    url, _ = await engine_env(kind)
    key = write_key_file(data_dir / KEY_FILE, SECRET)
    settings = make_settings()
    workers = [storage_factory(kind)(settings) for _ in range(3)]
    for worker in workers:
        await worker.open()
    try:
        await asyncio.gather(*(migrate(worker) for worker in workers))
        sealed = await asyncio.gather(*(prepare(worker, data_dir, SECRETS) for worker in workers))
        for storage in sealed:
            assert isinstance(storage, SealedStorage) and set(await storage.list(NS_ACCOUNTS)) == set(TOKENS)
        raw_accounts = await workers[0].list(NS_ACCOUNTS)
        assert len(raw_accounts) == len(TOKENS) and all(k.startswith("h:") for k in raw_accounts)
        assert {sealed_kid(r["token"]) for r in raw_accounts.values()} == {key.kid}
        assert (await sealed[1].counters("account_counts", FIRST)) == {"use_count": 7, "fail:rate_limited": 2}
    finally:
        for worker in workers:
            await worker.close()
    assert_no_credentials(await raw_dump(kind, url, data_dir))
