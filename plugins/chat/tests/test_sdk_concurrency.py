"""Fifty concurrent streams over five accounts: all answered, no account over its limit."""

from __future__ import annotations

import asyncio
from collections import Counter

from .conftest import StartGateway

ACCOUNTS = [f"basic-{i}" for i in range(1, 6)]
LIMIT = 10


async def test_fifty_concurrent_streams_over_five_accounts(start_gateway: StartGateway) -> None:
    live = await start_gateway(basic=ACCOUNTS, token={"max_inflight_per_account": LIMIT},
                               grok={"idle_timeout": 10.0, "timeout": 30.0})
    live.fake.inject("idle_gap", endpoint="chat", after_lines=5, delay=1.5, times=50)  # all open at once
    client = live.aclient()
    peak: Counter[str] = Counter()
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            for token, inflight in live.inflight().items():
                peak[token] = max(peak[token], inflight)
            await asyncio.sleep(0.002)

    async def one(n: int) -> str:
        stream = await client.chat.completions.create(
            model="grok-4.1-fast", stream=True, messages=[{"role": "user", "content": f"stream number {n}"}])
        return "".join([c.choices[0].delta.content or "" async for c in stream])

    watcher = asyncio.create_task(watch())
    answers = await asyncio.gather(*(one(n) for n in range(50)))
    done.set()
    await watcher
    assert answers == [f"Echo: stream number {n}" for n in range(50)]
    assert max(peak.values()) <= LIMIT and sum(peak.values()) >= 40, peak
    assert Counter(r.sso for r in live.chats()).keys() == set(ACCOUNTS)
    assert set(live.inflight().values()) == {0}
