"""OpenAI's Videos API with the real SDK: create, retrieve, list, download, delete; failures; who sees what."""

from __future__ import annotations

import asyncio
import base64
import io

import httpx2 as httpx
import openai
import orjson
import pytest

from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.fake_grok.faults import Endpoint
from grok2api.testing.fake_grok.media import png
from grok2api.testing.openai_schema import validate

from .conftest import StartGateway
from .support import API_KEY, OTHER_KEY, wait_for

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
MODEL = "grok-imagine-1.0-video"


async def test_create_wait_download_delete(start_gateway: StartGateway, fake_grok: FakeGrok) -> None:
    live = await start_gateway()
    async with live.aclient() as client:
        created = await client.videos.create(model=MODEL, prompt="a fox in the snow", size="1280x720", seconds="8")
        assert created.status in ("queued", "in_progress") and created.progress == 0
        assert created.id.startswith("video_") and created.size == "1280x720" and created.seconds == "8"
        done = await wait_for(client, created.id)
        assert done.status == "completed" and done.progress == 100 and done.error is None
        assert done.completed_at is not None and done.prompt == "a fox in the snow"
        video = await client.videos.download_content(created.id)
        assert video.response.headers["content-type"] == "video/mp4" and video.content[4:8] == b"ftyp"
        poster = await client.videos.download_content(created.id, variant="thumbnail")
        assert poster.content.startswith(b"\xff\xd8\xff")
        deleted = await client.videos.delete(created.id)
        assert deleted.deleted and deleted.id == created.id
        with pytest.raises(openai.NotFoundError):
            await client.videos.retrieve(created.id)
    (chat,) = fake_grok.requests_to(Endpoint.CHAT)
    assert isinstance(chat.json, dict)
    config = chat.json["responseMetadata"]["modelConfigOverride"]["modelMap"]["videoGenModelConfig"]
    assert config["aspectRatio"] == "16:9" and config["videoLength"] == 8
    assert await live.video_used() == 1


async def test_model_is_optional(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    async with live.aclient() as client:
        created = await client.videos.create(prompt="rain")
        assert created.model == MODEL and created.size == "720x1280" and created.seconds == "6"
        assert (await wait_for(client, created.id)).status == "completed"


async def test_image_to_video_multipart_and_json(start_gateway: StartGateway, fake_grok: FakeGrok) -> None:
    live = await start_gateway()
    picture = png("a source picture")
    async with live.aclient() as client:
        from_file = await client.videos.create(model=MODEL, prompt="move",
                                               input_reference=("cat.png", io.BytesIO(picture), "image/png"))
        assert (await wait_for(client, from_file.id)).status == "completed"
    uri = "data:image/png;base64," + base64.b64encode(picture).decode()
    async with httpx.AsyncClient() as http:
        answer = await http.post(live.url + "/v1/videos", headers={"Authorization": f"Bearer {API_KEY}"},
                                 json={"prompt": "move", "input_reference": {"image_url": uri}})
    assert answer.status_code == 200
    validate("VideoResource", answer.json())
    async with live.aclient() as client:
        assert (await wait_for(client, answer.json()["id"])).status == "completed"
    uploads = fake_grok.requests_to(Endpoint.UPLOAD)
    assert len(uploads) == 2
    assert all(isinstance(u.json, dict) and base64.b64decode(u.json["content"]) == picture for u in uploads)
    posts = fake_grok.requests_to(Endpoint.MEDIA_POST)
    assert [p.json["mediaType"] for p in posts if isinstance(p.json, dict)] == ["MEDIA_POST_TYPE_IMAGE"] * 2


@pytest.mark.parametrize(("field", "value"), [
    ("size", "640x480"), ("seconds", "3"), ("seconds", "16"), ("prompt", ""),
])
async def test_invalid_fields_are_named(start_gateway: StartGateway, field: str, value: str) -> None:
    live = await start_gateway()
    body = {"prompt": "x", field: value}
    async with live.aclient() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.videos.create(**body)  # type: ignore[arg-type]
    assert caught.value.param == field
    assert await live.video_used() == 0


async def test_not_a_picture_is_refused(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    async with live.aclient() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.videos.create(prompt="x", input_reference=("a.png", io.BytesIO(b"not a picture"), "image/png"))
    assert caught.value.param == "input_reference"


async def test_list_is_newest_first_and_paginated(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    async with live.aclient() as client:
        ids = [(await client.videos.create(prompt=f"clip {i}")).id for i in range(3)]
        for video_id in ids:
            await wait_for(client, video_id)
        first = await client.videos.list(limit=2)
        assert [v.id for v in first.data] == ids[::-1][:2] and first.has_more
        rest = await client.videos.list(limit=2, after=first.data[-1].id)
        assert [v.id for v in rest.data] == ids[:1] and not rest.has_more
        oldest = await client.videos.list(order="asc")
        assert [v.id for v in oldest.data] == ids
        assert [v.id async for v in client.videos.list(limit=1)] == ids[::-1]


async def test_jobs_are_visible_only_to_their_key(start_gateway: StartGateway) -> None:
    live = await start_gateway(app={"api_key": "sk-global-admin-key"})
    async with live.aclient() as mine:
        created = await mine.videos.create(prompt="mine")
        await wait_for(mine, created.id)
    async with live.aclient(OTHER_KEY) as other:
        with pytest.raises(openai.NotFoundError):
            await other.videos.retrieve(created.id)
        with pytest.raises(openai.NotFoundError):
            await other.videos.download_content(created.id)
        with pytest.raises(openai.NotFoundError):
            await other.videos.delete(created.id)
        assert (await other.videos.list()).data == []
    async with live.aclient("sk-global-admin-key") as admin:
        assert [v.id for v in (await admin.videos.list()).data] == [created.id]
        assert (await admin.videos.retrieve(created.id)).status == "completed"


async def test_moderated_job_fails_with_the_reason(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    async with live.aclient() as client:
        created = await client.videos.create(prompt="[moderate] no")
        done = await wait_for(client, created.id)
        assert done.status == "failed" and done.error is not None
        assert done.error.code == "content_policy_violation" and "moderation" in done.error.message
        with pytest.raises(openai.APIStatusError) as caught:
            await client.videos.download_content(created.id)
        assert caught.value.status_code == 409
    assert await live.video_used() == 0


async def test_hd_job_with_failing_upscale_delivers_sd(start_gateway: StartGateway, fake_grok: FakeGrok) -> None:
    live = await start_gateway()
    fake_grok.inject("server_error", endpoint=Endpoint.UPSCALE)
    async with httpx.AsyncClient() as http:
        answer = await http.post(live.url + "/v1/videos", headers={"Authorization": f"Bearer {API_KEY}"},
                                 json={"prompt": "x", "size": "1792x1024"})
    video_id = answer.json()["id"]
    async with live.aclient() as client:
        done = await wait_for(client, video_id)
    assert done.status == "completed" and done.size == "1280x720"
    assert "upstream failure" in (done.model_extra or {})["upscale_error"]
    async with live.aclient() as client:
        hd = await client.videos.create(prompt="x", size="1024x1792")
        assert (await wait_for(client, hd.id)).size == "1024x1792"
    job = await live.job(hd.id)
    assert job["video_file"].endswith("generated_video_hd.mp4")


async def test_at_most_max_concurrent_at_once(start_gateway: StartGateway, fake_grok: FakeGrok) -> None:
    live = await start_gateway(video={"max_concurrent": 1})
    fake_grok.frame_delay = 0.05
    async with live.aclient() as client:
        ids = [(await client.videos.create(prompt=f"clip {i}")).id for i in range(3)]
        busiest = 0
        async with asyncio.timeout(20):
            while True:
                statuses = [(await live.job(i))["status"] for i in ids]
                busiest = max(busiest, statuses.count("in_progress"))
                if all(s == "completed" for s in statuses):
                    break
                await asyncio.sleep(0.02)
    assert busiest == 1


async def test_deleting_a_queued_job_gives_the_video_back(start_gateway: StartGateway, fake_grok: FakeGrok) -> None:
    live = await start_gateway(video={"max_concurrent": 1})
    fake_grok.frame_delay = 0.1
    async with live.aclient() as client:
        running = await client.videos.create(prompt="first")
        queued = await client.videos.create(prompt="second")
        assert (await client.videos.retrieve(queued.id)).status == "queued"
        await client.videos.delete(queued.id)
        assert await live.video_used() == 1
        await client.videos.delete(running.id)
    assert await live.video_used() == 0


async def test_raw_bodies_match_the_schemas(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with httpx.AsyncClient(base_url=live.url, headers=headers) as http:
        created = (await http.post("/v1/videos", json={"prompt": "x", "seconds": 5})).json()
        validate("VideoResource", created)
        async with live.aclient() as client:
            await wait_for(client, created["id"])
        validate("VideoListResource", orjson.loads((await http.get("/v1/videos")).content))
        missing = await http.get("/v1/videos/video_nope")
        assert missing.status_code == 404
        validate("ErrorResponse", missing.json())
        validate("DeletedVideoResource", (await http.delete(f"/v1/videos/{created['id']}")).json())


async def test_a_job_waits_while_every_account_is_busy(start_gateway: StartGateway, fake_grok: FakeGrok) -> None:
    live = await start_gateway(token={"max_inflight_per_account": 1})
    fake_grok.frame_delay = 0.05
    async with live.aclient() as client:
        ids = [(await client.videos.create(prompt=f"clip {i}")).id for i in range(2)]
        done = [await wait_for(client, video_id, timeout=30) for video_id in ids]
    assert [v.status for v in done] == ["completed", "completed"]
