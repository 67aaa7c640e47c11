"""Redis specifics: URL forms, and pub/sub waking other workers at once."""

from __future__ import annotations

from grok2api.api import ServerSettings, Settings
from grok2api.testing.storage_conformance import assert_notified_promptly
from grok2api_plugins.storage_redis.engine import RedisStorage


def storage(url: str) -> RedisStorage:
    return RedisStorage(Settings(server=ServerSettings(storage_type="redis", storage_url=url)))


def test_url_forms() -> None:
    for url in ("redis://redis:6379/0", "rediss://:pw@redis.example:6380/2", "unix:///run/redis.sock?db=1"):
        assert storage(url).url() == url


async def test_pubsub_wakes_another_worker_before_any_poll(redis_url: str) -> None:
    waiting, writing = storage(redis_url), storage(redis_url)
    await waiting.open()
    await writing.open()
    try:
        await assert_notified_promptly(waiting, writing)
    finally:
        await waiting.close()
        await writing.close()


async def test_a_key_of_the_wrong_type_hides_no_other_record(redis_url: str) -> None:
    engine = storage(redis_url)
    await engine.open()
    try:
        await engine.put_many("plugin:wrongtype", {"good": {"v": 1}, "bad": {"v": 2}})
        await engine.client.delete("g2a:r:{plugin:wrongtype}:bad")
        await engine.client.set("g2a:r:{plugin:wrongtype}:bad", b"\xff not a hash")
        assert await engine.get("plugin:wrongtype", "bad") is None
        assert await engine.list("plugin:wrongtype") == {"good": {"v": 1}}
    finally:
        await engine.close()
