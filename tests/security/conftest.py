"""``served``: a real ``grok2api serve`` child with known secrets, in front of the fake Grok."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest_asyncio

from grok2api.testing.fake_grok import FakeGrok

from .support import MANAGED_KEY, SSO_TOKEN, Served, cli, free_port, gateway_env, serve

StartServed = Callable[..., Awaitable[Served]]


@pytest_asyncio.fixture
async def served(fake_grok: FakeGrok, tmp_path: Path) -> AsyncIterator[StartServed]:
    """``await served(server__header_timeout_sec="1")``: the gateway with a managed key and
    one account (the fake knows it) unless ``managed_key``/``account`` are false, settings
    from ``GROK2API_<SECTION>__<KEY>`` pairs."""
    started: list[Served] = []

    async def start(*, managed_key: bool = True, account: bool = True, **settings: str) -> Served:
        data_dir, port = tmp_path / "data", free_port()
        data_dir.mkdir(exist_ok=True)
        fake_grok.add_account(SSO_TOKEN)
        env = gateway_env(data_dir, port, fake_grok.base_url, **settings)
        if managed_key:
            await asyncio.to_thread(cli, env, tmp_path, "keys", "create", "--name", "managed", "--key", MANAGED_KEY)
        if account:
            await asyncio.to_thread(cli, env, tmp_path, "tokens", "add", SSO_TOKEN)
        child = await asyncio.to_thread(serve, env, tmp_path, port)
        started.append(child)
        return child

    yield start
    for child in started:
        await asyncio.to_thread(child.stop)
