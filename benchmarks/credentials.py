"""Credentials at rest: what sealing costs a pool of 100,000 accounts in SQLite.

    .venv/bin/python benchmarks/credentials.py [--size 100000]

Stores that many plain-text accounts (with use counts, as ``benchmarks/pool.py`` makes
them), then measures, each on the same file:

* plain load: ``TokenPool.start`` on the engine itself (no key: behaviour as before);
* sealing: the first start with a key (``prepare``: every account moved to its index and
  sealed, counters moved, the feed emptied, the file vacuumed), a one-time cost;
* sealed load: ``TokenPool.start`` through ``SealedStorage`` (every token opened);
* rotation: ``rotate`` to a new key.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from pool import record  # type: ignore[import-not-found]  # benchmarks/pool.py, beside this file

from grok2api.config.settings import Settings
from grok2api.pool import TokenPool
from grok2api.pool.account import NS_COUNTS, now_ms
from grok2api.storage import NS_ACCOUNTS, Storage
from grok2api.storage.credentials import KEY_FILE, write_key_file
from grok2api.storage.migrations import migrate
from grok2api.storage.sealed import SealedStorage, prepare, rotate
from grok2api.upstream import GrokClient
from grok2api.web.app import SECRETS
from grok2api_plugins.storage_local.engine import LocalStorage


async def load(storage: Storage, settings: Settings) -> tuple[float, int]:
    client = GrokClient(settings)
    pool = TokenPool(storage, client, settings)
    started = time.perf_counter()
    await pool.start(background=False)
    seconds = time.perf_counter() - started
    count = len(pool.accounts())
    await pool.stop()
    await client.close()
    return seconds, count


async def bench(size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        settings = Settings(data_dir=data_dir)
        settings.token = settings.token.model_copy(update={"auto_refresh": False, "sync_after_use": False})
        engine = LocalStorage(settings)
        await engine.open()
        await migrate(engine)
        rng, now = random.Random(size), now_ms()
        for start in range(0, size, 1000):
            chunk = [record(i, rng, now) for i in range(start, min(size, start + 1000))]
            await engine.put_many(NS_ACCOUNTS, {str(r["token"]): r for r in chunk})
            await engine.incr_many(NS_COUNTS, {str(r["token"]): {"use_count": 3} for r in chunk})
        plain_s, plain_n = await load(engine, settings)

        write_key_file(data_dir / KEY_FILE, bytes(rng.getrandbits(8) for _ in range(32)))
        started = time.perf_counter()
        sealed = await prepare(engine, data_dir, SECRETS)
        seal_s = time.perf_counter() - started
        assert isinstance(sealed, SealedStorage)
        sealed_s, sealed_n = await load(sealed, settings)

        started = time.perf_counter()
        await rotate(sealed, data_dir)
        rotate_s = time.perf_counter() - started
        again_s, again_n = await load(sealed, settings)
        await engine.close()
    assert plain_n == sealed_n == again_n == size
    print(f"{size:,} accounts: plain load {plain_s:.2f} s | first start sealing {seal_s:.2f} s (once) | "
          f"sealed load {sealed_s:.2f} s ({sealed_s / plain_s:.2f}x plain) | rotate-key {rotate_s:.2f} s | "
          f"load after rotation {again_s:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    args = parser.parse_args()
    from grok2api.logs.logger import setup_logging

    setup_logging("WARNING", log_dir=None)
    asyncio.run(bench(args.size))


if __name__ == "__main__":
    main()
