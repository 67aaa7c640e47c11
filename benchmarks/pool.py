"""Token pool benchmark: acquire+release throughput and latency, memory, and load time from SQLite.

    .venv/bin/python benchmarks/pool.py [--sizes 1000,10000,100000] [--ops 20000]

For each pool size it stores that many accounts in a fresh SQLite file (a realistic mix:
mostly active with known quota, some unknown, some cooling, some expired; a tenth of
them super), then measures:

* load: ``TokenPool.start`` reading every account, against a bare ``storage.list`` of
  the same records (the ratio is what building the pool adds);
* memory: what the loaded pool keeps (tracemalloc, after one acquisition has built the
  selection heaps) and the growth of the process's resident set;
* acquire+release: a window of 32 requests in flight, each step acquiring one and
  releasing the oldest, against a naive selector that scans every account per request
  with the same rules (what the original did).

Nothing talks to Grok: quota sync after use and the refresher are off, and writes are
debounced past the end of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import resource
import statistics
import string
import tempfile
import time
import tracemalloc
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path

from grok2api.config.settings import Settings
from grok2api.plugin.registries import ModelSpec
from grok2api.pool import Account, Bucket, Status, TokenPool
from grok2api.pool.account import now_ms
from grok2api.storage import NS_ACCOUNTS
from grok2api.upstream import GrokClient
from grok2api_plugins.storage_local.engine import LocalStorage

GROK3 = ModelSpec("grok-3", "Grok 3", "grok-3", "MODEL_MODE_GROK_3", "grok-3")
WINDOW = 32
TOKEN_CHARS = string.ascii_letters + string.digits + "-_"


def record(i: int, rng: random.Random, now: int) -> dict[str, object]:
    token = f"eyJ{i:07d}." + "".join(rng.choices(TOKEN_CHARS, k=150))  # as long as a real SSO JWT
    roll = rng.random()
    data: dict[str, object] = {"token": token, "pool": "ssoSuper" if rng.random() < 0.1 else "ssoBasic",
                               "created_at": now, "quota": rng.randint(1, 80), "use_count": rng.randint(0, 500)}
    if roll < 0.10:
        data["quota"] = -1
    elif roll < 0.15:
        data |= {"status": "cooling", "quota": 0, "cooldown_until": now + 3_600_000}
    elif roll < 0.20:
        data["status"] = "expired"
    return data


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class NaiveSelector:
    """The baseline: every request scans every account with the pool's own rules and preference."""

    def __init__(self, accounts: list[Account], max_inflight: int) -> None:
        self.accounts = accounts
        self.max_inflight = max_inflight

    def acquire(self) -> Account:
        now = now_ms()
        best = min((a for a in self.accounts
                    if a.status is Status.ACTIVE and a.cooldown_until <= now and a.quota != 0
                    and a.inflight < self.max_inflight),
                   key=lambda a: (a.quota < 0, a.inflight, a.last_used_at or 0, random.random()))
        best.take(Bucket.NORMAL, GROK3.cost)
        best.inflight += 1
        best.last_used_at = now
        return best

    @staticmethod
    def release(account: Account) -> None:
        account.inflight -= 1


async def run_window(ops: int, acquire: Callable[[], Awaitable[object]],
                     release: Callable[[object], Awaitable[None]]) -> tuple[float, list[int]]:
    """Ops per second of acquire+release, and each acquisition's latency in ns."""
    held: deque[object] = deque()
    latencies = []
    started = time.perf_counter()
    for _ in range(ops):
        t0 = time.perf_counter_ns()
        lease = await acquire()
        latencies.append(time.perf_counter_ns() - t0)
        held.append(lease)
        if len(held) >= WINDOW:
            await release(held.popleft())
    while held:
        await release(held.popleft())
    return ops / (time.perf_counter() - started), latencies


def p99_us(latencies: list[int]) -> float:
    return statistics.quantiles(latencies, n=100)[98] / 1000


async def bench(size: int, ops: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        settings.token = settings.token.model_copy(update={
            "auto_refresh": False, "sync_after_use": False, "save_delay_ms": 3_600_000,
            "max_inflight_per_account": 4})
        storage = LocalStorage(settings)
        await storage.open()
        client = GrokClient(settings)
        rng, now = random.Random(size), now_ms()
        for start in range(0, size, 1000):
            chunk = [record(i, rng, now) for i in range(start, min(size, start + 1000))]
            await storage.put_many(NS_ACCOUNTS, {r["token"]: r for r in chunk})  # type: ignore[misc]

        gc.collect()
        t0 = time.perf_counter()
        records = await storage.list(NS_ACCOUNTS)
        list_s = time.perf_counter() - t0
        del records
        gc.collect()

        rss_before = rss_mb()
        pool = TokenPool(storage, client, settings)
        t0 = time.perf_counter()
        await pool.start(background=False)
        load_s = time.perf_counter() - t0
        await (await pool.acquire(GROK3)).release()  # builds the selection heaps
        gc.collect()
        rss_growth = rss_mb() - rss_before

        pool_ops, pool_lat = await run_window(ops, lambda: pool.acquire(GROK3), lambda lease: lease.release())
        baseline = NaiveSelector([Account.from_record(a.token, a.to_record()) for a in pool.accounts()],
                                 settings.token.max_inflight_per_account)

        async def naive_acquire() -> Account:
            return baseline.acquire()

        async def naive_release(account: object) -> None:
            baseline.release(account)  # type: ignore[arg-type]

        naive_ops, naive_lat = await run_window(max(200, min(ops, 2_000_000 // size)), naive_acquire, naive_release)
        await pool.stop()

        gc.collect()
        tracemalloc.start()
        traced_before = tracemalloc.get_traced_memory()[0]
        measured = TokenPool(storage, client, settings)
        await measured.start(background=False)
        await (await measured.acquire(GROK3)).release()
        gc.collect()
        pool_mb = (tracemalloc.get_traced_memory()[0] - traced_before) / 2**20
        tracemalloc.stop()
        await measured.stop()

        await client.close()
        await storage.close()
    return {"size": size, "ops": pool_ops, "p50": statistics.median(pool_lat) / 1000, "p99": p99_us(pool_lat),
            "naive_ops": naive_ops, "naive_p99": p99_us(naive_lat), "load_s": load_s, "list_s": list_s,
            "pool_mb": pool_mb, "rss_mb": rss_growth}


def report(rows: list[dict[str, float]]) -> None:
    print(f"{'accounts':>9} | {'acq+rel/s':>10} {'p50 µs':>7} {'p99 µs':>7} | {'naive/s':>9} {'naive p99 µs':>12} "
          f"{'speed-up':>8} {'p99 ratio':>9} | {'load s':>7} {'list s':>7} {'load/list':>9} | "
          f"{'pool MB':>7} {'RSS+ MB':>7}")
    for r in rows:
        print(f"{r['size']:>9,.0f} | {r['ops']:>10,.0f} {r['p50']:>7.1f} {r['p99']:>7.1f} | {r['naive_ops']:>9,.0f} "
              f"{r['naive_p99']:>12,.0f} {r['ops'] / r['naive_ops']:>7.0f}x {r['naive_p99'] / r['p99']:>8.0f}x | "
              f"{r['load_s']:>7.2f} {r['list_s']:>7.2f} {r['load_s'] / r['list_s']:>8.2f}x | "
              f"{r['pool_mb']:>7.1f} {r['rss_mb']:>7.1f}")
    big = rows[-1]
    print(f"\ntargets at {big['size']:,.0f} accounts: p99 acquire {big['p99']:.1f} µs (< 50: "
          f"{'met' if big['p99'] < 50 else 'MISSED'}), pool memory {big['pool_mb']:.0f} MB (< 200: "
          f"{'met' if big['pool_mb'] < 200 else 'MISSED'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--ops", type=int, default=20_000)
    args = parser.parse_args()
    from grok2api.logs.logger import setup_logging
    setup_logging("WARNING", log_dir=None)

    async def run_all() -> list[dict[str, float]]:
        return [await bench(int(size), args.ops) for size in args.sizes.split(",")]

    report(asyncio.run(run_all()))


if __name__ == "__main__":
    main()
