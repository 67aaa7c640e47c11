"""A gateway worker's pool in its own process, for the tests that need several processes or a signal.

    python worker.py refresh '<settings json>'   refresh in the background until every account was synced
    python worker.py serve '<settings json>' N   serve N requests, print "ready", stop cleanly on SIGTERM
    python worker.py count '<settings json>' N   serve N requests one after another, then stop
    python worker.py race '<settings json>' N    serve with N loops until no account is left, print how many

Settings come from the environment (``DATA_DIR``) plus the JSON overrides, so the
worker shares the test's SQLite file and fake Grok.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

import orjson

from grok2api.config.settings import Settings
from grok2api.plugin.registries import ModelSpec
from grok2api.pool import TokenPool
from grok2api.pool.errors import NoAccountAvailable
from grok2api.storage import NS_ACCOUNTS
from grok2api.upstream import ChatRequest, GrokClient
from grok2api_plugins.storage_local.engine import LocalStorage

GROK3 = ModelSpec("grok-3", "Grok 3", "grok-3", "MODEL_MODE_GROK_3", "grok-3")


async def refresh_until_synced(pool: TokenPool, storage: LocalStorage) -> None:
    for _ in range(100):
        records = await storage.list(NS_ACCOUNTS)
        if records and all(r.get("last_sync_at") for r in records.values()):
            return
        await asyncio.sleep(0.1)


async def serve(pool: TokenPool, client: GrokClient, requests: int) -> None:
    async def talk(lease: Any) -> None:
        async for _event in client.chat(lease.token, ChatRequest("grok-3", "MODEL_MODE_GROK_3", "hi")):
            pass

    for _ in range(requests):
        await pool.call(GROK3, talk)


async def serve_until_refused(pool: TokenPool, client: GrokClient, loops: int) -> None:
    served = 0

    async def loop() -> None:
        nonlocal served
        while True:
            try:
                await serve(pool, client, 1)
            except NoAccountAvailable:
                return
            served += 1

    await asyncio.gather(*(loop() for _ in range(loops)))
    print(served, flush=True)


async def serve_until_terminated(pool: TokenPool, client: GrokClient, requests: int) -> None:
    await serve(pool, client, requests)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", orjson.dumps({a.token: a.use_count for a in pool.accounts()}).decode(), flush=True)
    await stop.wait()


async def main(mode: str, overrides: dict[str, Any], requests: int) -> None:
    settings = Settings(**overrides)
    storage = LocalStorage(settings)
    await storage.open()
    client = GrokClient(settings)
    pool = TokenPool(storage, client, settings)
    await pool.start(background=mode == "refresh")
    try:
        if mode == "refresh":
            await refresh_until_synced(pool, storage)
        elif mode == "count":
            await serve(pool, client, requests)
        elif mode == "race":
            await serve_until_refused(pool, client, requests)
        else:
            await serve_until_terminated(pool, client, requests)
    finally:
        await pool.stop()
        await client.close()
        await storage.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], orjson.loads(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0))
