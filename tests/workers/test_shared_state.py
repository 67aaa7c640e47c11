"""Several gateway processes share one pool: what one learns, the others learn; no counter is lost.

Each case runs real `grok2api serve` processes (two sharing a Redis, PostgreSQL or
MariaDB database, or one with `--workers 2` on SQLite) in front of the fake Grok, and
changes state from outside with the CLI, as an operator would.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import orjson
import pytest
import pytest_asyncio

from grok2api.config.runtime import save
from grok2api.config.settings import load_settings
from grok2api.testing.engines import free_port, fresh_database, storage_factory
from grok2api.testing.fake_grok import FakeGrok

RELOAD = 1.0  # token.reload_interval_sec of every gateway here
CHAT = {"model": "grok-4", "messages": [{"role": "user", "content": "hi"}]}


class Deployment:
    """Gateway processes plus the environment the CLI needs to reach their storage."""

    def __init__(self, env: dict[str, str], urls: list[str], procs: list[subprocess.Popen[bytes]]) -> None:
        self.env, self.urls, self.procs = env, urls, procs

    def cli(self, *args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "grok2api", *args], env=self.env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    async def chat(self, url: str, key: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with aiohttp.ClientSession() as http, http.post(f"{url}/v1/chat/completions", json=CHAT,
                                                             headers=headers) as resp:
            await resp.read()
            return resp.status


async def eventually(check: Callable[[], Awaitable[bool]], within: float) -> float:
    """Seconds until ``check`` holds; fails after ``within``."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within, f"not seen within {within}s"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


@pytest_asyncio.fixture
async def deploy(fake_grok: FakeGrok, tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Deployment]]]:
    procs: list[subprocess.Popen[bytes]] = []

    async def start(kind: str, *, processes: int = 2, workers: int = 1) -> Deployment:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GROK2API_", "SERVER_"))}
        env.update(
            DATA_DIR=str(tmp_path / "data"), SERVER_HOST="127.0.0.1", SERVER_WORKERS=str(workers),
            SERVER_STORAGE_TYPE=kind, SERVER_STORAGE_URL="" if kind == "local" else await fresh_database(kind),
            GROK2API_TOKEN__RELOAD_INTERVAL_SEC=str(RELOAD), GROK2API_TOKEN__AUTO_REFRESH="false",
            GROK2API_GROK__BASE_URL=fake_grok.base_url, GROK2API_GROK__ASSETS_URL=fake_grok.assets_url,
            GROK2API_DISABLE_PLUGINS="hello", LOG_LEVEL="WARNING",
        )
        urls = []
        for _ in range(processes):
            port = free_port()
            procs.append(subprocess.Popen([sys.executable, "-m", "grok2api", "serve", "--port", str(port)],
                                          env=env, cwd=tmp_path))
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            await eventually(lambda url=url: _healthy(url), within=30)
        return Deployment(env, urls, procs)

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=20)


async def _healthy(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


@pytest.mark.parametrize("kind", ["redis", "pgsql", "mysql"])
async def test_two_processes_share_accounts_keys_config_and_counters(deploy, kind: str) -> None:
    d = await deploy(kind)
    a, b = d.urls
    assert await d.chat(a) == 503 and await d.chat(b) == 503  # no account anywhere yet

    d.cli("tokens", "add", "acct-1", "acct-2")
    for url in (a, b):
        await eventually(lambda url=url: _status_is(d.chat(url), 200), within=RELOAD + 2)

    created = d.cli("keys", "create", "--name", "shared", "--chat", "6")
    key = re.search(r"key: (\S+)", created).group(1)  # type: ignore[union-attr]
    for url in (a, b):  # a key now exists: open mode ends and the key works, on both
        await eventually(lambda url=url: _status_is(d.chat(url), 401), within=RELOAD + 2)
        assert await d.chat(url, key) == 200

    # 2 requests are spent; 10 more race across both processes for the last 4 units
    results = await asyncio.gather(*(d.chat(url, key) for url in (a, b) * 5))
    assert sorted(results) == [200] * 4 + [429] * 6

    d.cli("keys", "update", key, "--deactivate")
    for url in (a, b):
        await eventually(lambda url=url: _status_is(d.chat(url, key), 401), within=RELOAD + 2)

    # a run-time config change, stored as the admin console stores it, reaches both
    settings = load_settings(server={"storage_type": kind, "storage_url": d.env["SERVER_STORAGE_URL"]})
    storage = storage_factory(kind)(settings)
    await storage.open()
    try:
        await save(storage, settings, {"app": {"api_key": "sk-set-at-run-time-0001"}}, {"app": type(settings.app)})
    finally:
        await storage.close()
    for url in (a, b):
        await eventually(lambda url=url: _status_is(d.chat(url, "sk-set-at-run-time-0001"), 200), within=RELOAD + 2)


async def test_workers_sharing_one_port_share_one_sqlite_pool(deploy) -> None:
    d = await deploy("local", processes=1, workers=2)
    (url,) = d.urls
    d.cli("tokens", "add", *(f"acct-{i}" for i in range(10)))  # enough room: every 429 below is the key's limit
    created = d.cli("keys", "create", "--chat", "20")
    key = re.search(r"key: (\S+)", created).group(1)  # type: ignore[union-attr]
    # whichever worker answers, the key and the account are known within the reload interval
    await eventually(lambda: _all_ok([d.chat(url, key) for _ in range(6)]), within=RELOAD + 3)
    spent = chat_used(d)
    results = await asyncio.gather(*(d.chat(url, key) for _ in range(30)))
    assert results.count(200) == 20 - spent  # both workers charged one counter, nothing lost
    assert results.count(429) == 30 - (20 - spent)
    assert chat_used(d) == 20


def chat_used(d: Deployment) -> int:
    (row,) = [orjson.loads(line) for line in d.cli("keys", "list", "--json").splitlines() if line.strip()]
    return int(row["usage_today"]["chat_used"])


async def _status_is(call: Awaitable[int], status: int) -> bool:
    return await call == status


async def _all_ok(calls: list[Awaitable[int]]) -> bool:
    return all(s == 200 for s in await asyncio.gather(*calls))
