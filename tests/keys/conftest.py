"""``start_gateways``: real gateways (chat plugin, a chosen storage engine) on loopback ports in
front of the ``fake_grok`` fixture; several started in one test share one storage, as
workers or machines do."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import openai
import pytest_asyncio
from aiohttp import web

from grok2api.api import KEYS, POOL, Settings, create_app
from grok2api.keys.service import KeyService
from grok2api.testing.engines import engine_url
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.pytest_plugin import load_plugin

ACCOUNTS = ["keys-acct-1", "keys-acct-2", "keys-acct-3", "keys-acct-4"]
TIMEOUTS = {"connect_timeout": 1.0, "first_byte_timeout": 5.0, "idle_timeout": 20.0, "timeout": 60.0}


@dataclass
class Gateway:
    url: str
    app: web.Application

    @property
    def keys(self) -> KeyService:
        return self.app[KEYS]

    def sdk(self, key: str) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0)


StartGateways = Callable[..., Awaitable[list[Gateway]]]


@pytest_asyncio.fixture
async def start_gateways(fake_grok: FakeGrok, make_settings: Callable[..., Settings]
                         ) -> AsyncIterator[StartGateways]:
    """``await start_gateways("redis", count=2)``: that many gateways on one storage of the engine."""
    runners: list[web.AppRunner] = []

    async def start(engine: str = "local", count: int = 1, **sections: dict[str, Any]) -> list[Gateway]:
        for token in ACCOUNTS:
            fake_grok.add_account(token)
        server = {"storage_type": engine, "storage_url": "" if engine == "local" else engine_url(engine)}
        started = []
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            settings = make_settings(grok={**fake_grok.grok_settings(), **TIMEOUTS}, server=server,
                                     app={"app_url": url}, **sections)
            app = create_app(settings, [load_plugin(f"storage_{engine}"), load_plugin("chat")],
                             load_entrypoints=False)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.SockSite(runner, sock).start()
            runners.append(runner)
            await app[POOL].add(ACCOUNTS)
            started.append(Gateway(url, app))
        return started

    yield start
    for runner in runners:
        await runner.cleanup()
