"""A job survives a restart of the gateway: resumed by the next start, or failed with the reason."""

from __future__ import annotations

import asyncio

import pytest

from grok2api.api import SETTINGS, STORAGE
from grok2api.testing.fake_grok import FakeGrok

from .conftest import StartGateway, StopGateway
from .support import Live, wait_for

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


async def _interrupted(start: StartGateway, stop: StopGateway, fake_grok: FakeGrok, **video: int) -> tuple[Live, str]:
    """A gateway stopped while its one job was in progress, and a new one on the same storage."""
    first = await start(video=video)
    fake_grok.frame_delay = 0.5
    async with first.aclient() as client:
        video_id = (await client.videos.create(prompt="long take")).id
        async with asyncio.timeout(10):
            while (await first.job(video_id))["status"] != "in_progress":
                await asyncio.sleep(0.02)
    settings = first.app[SETTINGS]
    await stop(first)
    fake_grok.frame_delay = 0.0
    return await start(settings=settings, keys=False, video=video), video_id


async def test_a_job_interrupted_by_a_stop_is_resumed(gateways: tuple[StartGateway, StopGateway],
                                                      fake_grok: FakeGrok) -> None:
    second, video_id = await _interrupted(*gateways, fake_grok)
    async with second.aclient() as client:
        done = await wait_for(client, video_id)
    assert done.status == "completed"
    assert (await second.job(video_id))["attempts"] == 2
    assert await second.video_used() == 1


async def test_a_job_out_of_runs_fails_with_the_reason(gateways: tuple[StartGateway, StopGateway],
                                                       fake_grok: FakeGrok) -> None:
    second, video_id = await _interrupted(*gateways, fake_grok, job_attempts=1)
    async with second.aclient() as client:
        done = await wait_for(client, video_id)
    assert done.status == "failed" and done.error is not None
    assert done.error.code == "gateway_interrupted" and "stopped" in done.error.message
    assert await second.video_used() == 0


async def test_a_crashed_workers_job_is_taken_over_when_its_claim_expires(start_gateway: StartGateway) -> None:
    live = await start_gateway(video={"job_lease_sec": 1.5})
    storage = live.app[STORAGE]
    async with live.aclient() as client:
        video_id = (await client.videos.create(prompt="orphan")).id
        await wait_for(client, video_id)
        # what a worker that died mid-run leaves: its claim, the job in progress, still queued
        await storage.patch("video_jobs", video_id, {"status": "in_progress", "progress": 47, "attempts": 1})
        await storage.put("video_queue", video_id, {"created_ms": 0})
        assert await storage.acquire_lock(f"video-job:{video_id}", "a-dead-worker", 1.5)
        await asyncio.sleep(0.5)
        assert (await client.videos.retrieve(video_id)).status == "in_progress"  # the claim still holds
        done = await wait_for(client, video_id)
    assert done.status == "completed" and (await live.job(video_id))["attempts"] == 2
