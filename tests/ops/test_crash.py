"""SIGKILL under load: a real ``grok2api serve`` on a SQLite file, 32 streams in flight, killed
mid-flight. Storage must then hold every request answered before the flush interval that
docs/security.md states, and nothing for a request that was never answered; the key's
reservations of the requests cut off are given back once the dead worker's heartbeat expires."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import openai
import pytest

from grok2api.config.settings import Settings, load_settings
from grok2api.keys.charges import USAGE_NS, holds_by_origin
from grok2api.keys.leases import WORKER_LOCK
from grok2api.keys.service import KeyService, QuotaExceeded, usage_day
from grok2api.logs.request_log import ALL, STREAM, RequestLog
from grok2api.pool.account import NS_COUNTS, USE_COUNT, Account
from grok2api.storage import NS_ACCOUNTS, Storage
from grok2api.testing.engines import free_port, storage_factory
from grok2api.testing.fake_grok import FakeGrok

IN_FLIGHT = 32
ACCOUNTS = 8  # token.max_inflight_per_account (4) each: all 32 are served at once
KEY = "sk-crash-test-0123456789abcdef"
QUOTA = 10_000  # each account's known quota: a request takes one unit when it starts
CHAT_LIMIT = 100_000  # the key's daily chat limit: never reached by the load
#: the intervals this gateway runs with (short, so a run takes seconds)
SAVE_DELAY_MS = REQUEST_LOG_FLUSH_MS = 200
#: what a write round may take beyond its interval on a loaded machine: a request answered
#: earlier than kill - (interval + MARGIN) must be stored
MARGIN = 1.5
#: how long the load runs after the first answer before the kill
LOAD = 3.0
CHAT: dict[str, Any] = {"model": "grok-4", "messages": [{"role": "user", "content": "hi"}], "stream": True}
T = TypeVar("T")


def _settings(data_dir: Path) -> Settings:
    return load_settings(server={"storage_type": "local"}, data_dir=data_dir)


async def _with_storage(data_dir: Path, work: Callable[[Storage], Awaitable[T]]) -> T:
    storage: Storage = storage_factory("local")(_settings(data_dir))
    await storage.open()
    try:
        return await work(storage)
    finally:
        await storage.close()


async def _seed(storage: Storage, data_dir: Path) -> None:
    """Eight accounts and one managed key, written as the CLI would."""
    now = int(time.time() * 1000)
    await storage.put_many(NS_ACCOUNTS, {
        f"crash-acct-{i}": Account(token=f"crash-acct-{i}", created_at=now, quota=QUOTA).to_record()
        for i in range(ACCOUNTS)})
    await KeyService(storage, _settings(data_dir)).create(name="crash", key=KEY, limits={"chat_limit": CHAT_LIMIT})


async def _healthy(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as resp:
            return resp.status == 200
    except aiohttp.ClientError:
        return False


async def _stream(client: openai.AsyncOpenAI) -> None:
    """One chat stream read to ``[DONE]``."""
    async with client.chat.completions.with_streaming_response.create(**CHAT) as response:
        assert response.status_code == 200
        lines = [line async for line in response.iter_lines() if line.startswith("data:")]
    assert lines[-1] == "data: [DONE]", lines[-3:]


async def test_sigkill_under_load_loses_at_most_the_flush_interval(fake_grok: FakeGrok, tmp_path: Path) -> None:
    fake_grok.frame_delay = 0.1  # a stream takes about 0.8 s: 32 are always in flight
    data_dir, port = tmp_path / "data", free_port()
    url = f"http://127.0.0.1:{port}"
    await _with_storage(data_dir, lambda storage: _seed(storage, data_dir))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GROK2API_", "SERVER_"))}
    env.update(DATA_DIR=str(data_dir), SERVER_HOST="127.0.0.1", GROK2API_DISABLE_PLUGINS="hello",
               GROK2API_GROK__BASE_URL=fake_grok.base_url, GROK2API_GROK__ASSETS_URL=fake_grok.assets_url,
               GROK2API_TOKEN__AUTO_REFRESH="false", GROK2API_TOKEN__SYNC_AFTER_USE="false",
               GROK2API_TOKEN__SAVE_DELAY_MS=str(SAVE_DELAY_MS),
               GROK2API_PERFORMANCE__REQUEST_LOG_FLUSH_MS=str(REQUEST_LOG_FLUSH_MS), LOG_LEVEL="WARNING")
    stderr = tmp_path / "stderr.log"  # a file, not a pipe nobody reads while the load runs
    with stderr.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "grok2api", "serve", "--port", str(port)], env=env,
                                cwd=tmp_path, stderr=sink)
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=60)
    sent, answered = 0, list[float]()
    first_answer, killing = asyncio.Event(), asyncio.Event()

    async def keep_asking() -> None:
        nonlocal sent
        while True:
            sent += 1
            try:
                await _stream(client)
            except Exception:
                if killing.is_set():
                    return  # the gateway is gone: whatever the client library says about it
                raise
            answered.append(time.monotonic())
            first_answer.set()

    workers: list[asyncio.Task[None]] = []
    try:
        deadline = time.monotonic() + 60
        while not await _healthy(url):
            assert proc.poll() is None and time.monotonic() < deadline, "the gateway did not start"
            await asyncio.sleep(0.1)
        workers = [asyncio.create_task(keep_asking()) for _ in range(IN_FLIGHT)]
        await asyncio.wait_for(first_answer.wait(), 30)
        await asyncio.sleep(LOAD)
        killing.set()
        killed = time.monotonic()
        proc.kill()
        await asyncio.to_thread(proc.wait, 30)
        await asyncio.wait_for(asyncio.gather(*workers), 30)
    finally:
        for task in workers:
            task.cancel()
        await client.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        log = stderr.read_text(errors="replace")

    async def stored(storage: Storage) -> tuple[list[Any], int, int, int]:
        entries = [e.data for e in await storage.read_log(STREAM, limit=10_000)]
        hours = (await RequestLog(storage).stats()).values()
        uses = sum(c.get(USE_COUNT, 0) for c in (await storage.counters_many(NS_COUNTS)).values())
        taken = sum(QUOTA - int(r["quota"]) for r in (await storage.list(NS_ACCOUNTS)).values())
        return entries, sum(h[ALL]["requests"] for h in hours), uses, taken

    entries, counted, uses, taken = await _with_storage(data_dir, stored)
    done = [t for t in answered if t <= killed]
    in_flight = sent - len(done)
    assert in_flight >= IN_FLIGHT // 2, (sent, len(done))  # killed mid-flight
    logged_by = sum(t <= killed - (REQUEST_LOG_FLUSH_MS / 1000 + MARGIN) for t in done)
    used_by = sum(t <= killed - (SAVE_DELAY_MS / 1000 + MARGIN) for t in done)
    assert logged_by > 0 and used_by > 0, (len(done), killed - done[0])
    chats = [e for e in entries if e["path"] == "/v1/chat/completions"]
    assert all(e["status"] == 200 for e in chats), chats  # no row for a request that never answered
    summary = (f"answered {len(done)}, in flight {in_flight}; stored: {len(chats)} rows, {counted} counted, "
               f"{uses} uses, {taken} quota units; required {logged_by} rows, {used_by} uses\n{log[-2000:]}")
    # everything answered before the interval (and a write's time) is stored; at most every request sent is
    assert logged_by <= len(chats) <= sent, summary
    assert logged_by <= counted <= sent, summary
    assert used_by <= uses <= sent, summary
    assert used_by <= taken <= sent, summary  # a request killed in flight keeps its unit until a sync

    # the key: every answer the clients saw was settled before its last event; the requests
    # cut off hold reservations of the dead worker, which count until its heartbeat expires
    held, settled, after = await _with_storage(data_dir, lambda storage: _key_after_crash(storage, data_dir))
    assert len(done) <= settled and 1 <= held and settled + held <= sent, (len(done), settled, held, sent)
    assert after == {"chat_used": CHAT_LIMIT, "held": CHAT_LIMIT - settled}, after  # the dead worker's holds went back


async def _key_after_crash(storage: Storage, data_dir: Path) -> tuple[int, int, dict[str, int]]:
    """The dead worker's open reservations and the settled usage; then, once a reservation of
    everything the limit leaves without them went through, the key's usage and open holds."""
    settings = _settings(data_dir)
    ns, keys = USAGE_NS + usage_day(), KeyService(storage, settings)
    who = await keys.authenticate(KEY)
    assert who is not None and who.key_id is not None
    counters = await storage.counters(ns, who.key_id)
    ((origin, holds),) = holds_by_origin(counters).items()
    settled = counters["chat_used"] - holds["chat"]
    try:  # within the TTL its holds count: a worker that stalls must not lose its reservations
        with pytest.raises(QuotaExceeded):
            await keys.reserve(who, {"chat": CHAT_LIMIT - settled})
    finally:
        await keys.close()
    # the heartbeat lock expires a TTL (60 s) after its last renewal; the test releases it
    # instead of waiting a minute, which is all the expiry does
    assert await storage.release_lock(WORKER_LOCK.format(origin), origin)
    keys = KeyService(storage, settings)  # a worker that has not seen the dead one alive
    try:
        rest = await keys.reserve(who, {"chat": CHAT_LIMIT - settled})  # the dead holds go back first
        counters = await storage.counters(ns, who.key_id)
        after = {"chat_used": counters["chat_used"],
                 "held": sum(h.get("chat", 0) for h in holds_by_origin(counters).values())}
        await rest.refund()
    finally:
        await keys.close()
    return holds["chat"], settled, after
