"""The storage conformance suite on a redis-server."""

import pytest
import redis.asyncio as redis

from grok2api.api import ServerSettings, Settings, Storage
from grok2api.testing.engines import redis_url  # noqa: F401 - fixture
from grok2api.testing.storage_conformance import StorageConformance


class TestRedisConformance(StorageConformance):
    factory = "grok2api_plugins.storage_redis.engine:RedisStorage"

    @pytest.fixture
    def settings(self, redis_url: str) -> Settings:  # noqa: F811
        return Settings(server=ServerSettings(storage_type="redis", storage_url=redis_url))

    async def reset(self, settings: Settings) -> None:
        async with redis.from_url(settings.server.storage_url) as client:
            await client.flushdb()

    async def corrupt(self, storage: Storage, ns: str, key: str) -> None:
        async with redis.from_url(storage.settings.server.storage_url) as client:  # type: ignore[attr-defined]
            await client.hset(f"g2a:r:{{{ns}}}:{key}", ".token", b'"unterminated')
