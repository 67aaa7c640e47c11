"""Two workers sharing jobs through Redis and PostgreSQL: one limit across both, and a job
a stopped worker leaves is finished by the other."""

from __future__ import annotations

import asyncio

import pytest

from grok2api.testing.engines import pgsql_url, redis_url  # noqa: F401 - fixtures
from grok2api.testing.fake_grok import FakeGrok

from .conftest import StartGateway, StopGateway
from .support import wait_for

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


@pytest.fixture(params=["redis", "pgsql"])
def engine(request: pytest.FixtureRequest) -> dict[str, str]:
    url = request.getfixturevalue(f"{request.param}_url")
    return {"storage_type": request.param, "storage_url": url}


async def test_two_workers_share_the_queue_and_the_limit(gateways: tuple[StartGateway, StopGateway],
                                                         fake_grok: FakeGrok, engine: dict[str, str]) -> None:
    start, stop = gateways
    video = {"max_concurrent": 1}
    first = await start(server=engine, video=video)
    second = await start(server=engine, video=video, keys=False, basic=["basic-2"])
    fake_grok.frame_delay = 0.05
    async with first.aclient() as one, second.aclient() as two:
        ids = [(await (one if i % 2 else two).videos.create(prompt=f"clip {i}")).id for i in range(4)]
        busiest = 0
        async with asyncio.timeout(30):
            while True:
                statuses = [(await first.job(i))["status"] for i in ids]
                busiest = max(busiest, statuses.count("in_progress"))
                if all(s == "completed" for s in statuses):
                    break
                await asyncio.sleep(0.02)
        assert busiest == 1
        seen = {v.id async for v in two.videos.list(limit=100)}
        assert set(ids) <= seen
        # a job the first worker was making when it stopped is finished by the second
        fake_grok.frame_delay = 0.5
        video_id = (await one.videos.create(prompt="handed over")).id
        async with asyncio.timeout(10):
            while (await first.job(video_id))["status"] != "in_progress":
                await asyncio.sleep(0.02)
    await stop(first)
    fake_grok.frame_delay = 0.0
    async with second.aclient() as two:
        done = await wait_for(two, video_id, timeout=20)
    assert done.status == "completed"
