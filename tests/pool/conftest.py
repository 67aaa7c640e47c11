"""The pool against real parts: SQLite storage (storage_local) and the real GrokClient talking
to the fake Grok on loopback. Cooldowns and delays are tiny so every transition shows fast."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from grok2api.config.settings import Settings
from grok2api.plugin.registries import ModelSpec
from grok2api.pool import Lease, TokenPool
from grok2api.storage import Storage
from grok2api.testing.fake_grok import FakeGrok
from grok2api.upstream import ChatRequest, Event, GrokClient
from grok2api_plugins.storage_local.engine import LocalStorage

GROK3 = ModelSpec("grok-3", "Grok 3", "grok-3", "MODEL_MODE_GROK_3", "grok-3")
THINKING = ModelSpec("grok-4.1-thinking", "Grok 4.1 Thinking", "grok-4-1-thinking-1129",
                     "MODEL_MODE_GROK_4_1_THINKING", "grok-4-1-thinking-1129", cost=4)
HEAVY = ModelSpec("grok-4-heavy", "Grok 4 Heavy", "grok-4", "MODEL_MODE_HEAVY", "grok-4-heavy",
                  tier="super", cost=4, heavy=True)

TOKEN_SETTINGS: dict[str, Any] = {
    "save_delay_ms": 20, "cooldown_base_sec": 0.3, "cooldown_max_sec": 1.0, "soft_cooldown_sec": 0.3,
    "fail_threshold": 2, "auto_refresh": False, "sync_after_use": False, "max_inflight_per_account": 2,
}


def grok_settings(fake: FakeGrok) -> dict[str, Any]:
    return {**fake.grok_settings(), "timeout": 5, "connect_timeout": 2, "first_byte_timeout": 2,
            "idle_timeout": 2, "max_retry": 2, "retry_status_codes": [401, 403, 429, 503]}


@pytest.fixture
def settings(make_settings: Callable[..., Settings], fake_grok: FakeGrok) -> Settings:
    return make_settings(grok=grok_settings(fake_grok), token=TOKEN_SETTINGS)


@pytest_asyncio.fixture
async def storage(settings: Settings) -> AsyncIterator[Storage]:
    engine = LocalStorage(settings)
    await engine.open()
    yield engine
    await engine.close()


@pytest_asyncio.fixture
async def client(settings: Settings) -> AsyncIterator[GrokClient]:
    grok = GrokClient(settings)
    yield grok
    await grok.close()


PoolFactory = Callable[..., Awaitable[TokenPool]]


@pytest_asyncio.fixture
async def make_pool(storage: Storage, client: GrokClient, settings: Settings) -> AsyncIterator[PoolFactory]:
    """Started pools on the test's storage (or another), stopped at the end."""
    pools: list[TokenPool] = []

    async def make(*, background: bool = False, on: Storage | None = None) -> TokenPool:
        pool = TokenPool(on or storage, client, settings)
        await pool.start(background=background)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.stop()


@pytest_asyncio.fixture
async def pool(make_pool: PoolFactory) -> TokenPool:
    return await make_pool()


def set_token(settings: Settings, **values: Any) -> None:
    """Swap the token section whole, as a run-time config change does."""
    settings.token = settings.token.model_validate({**settings.token.model_dump(), **values})


def chat(client: GrokClient, model: ModelSpec = GROK3) -> Callable[[Lease], Awaitable[list[Event]]]:
    """A whole conversation on the leased account."""

    async def run(lease: Lease) -> list[Event]:
        return [event async for event in open_chat(client, model)(lease)]

    return run


def open_chat(client: GrokClient, model: ModelSpec = GROK3) -> Callable[[Lease], AsyncIterator[Event]]:
    def start(lease: Lease) -> AsyncIterator[Event]:
        return client.chat(lease.token, ChatRequest(model.upstream_model, model.upstream_mode, "hello"))

    return start
