"""Every non-chat operation of GrokClient against the fake over loopback."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from aiohttp import web

from grok2api.config.settings import Settings
from grok2api.testing.fake_grok import FakeGrok, StoredAsset
from grok2api.upstream import (
    ChatRequest,
    Failure,
    GrokClient,
    ImagineImage,
    ImagineSlotDone,
    ImagineSlotStarted,
    RateLimits,
    UpstreamError,
    VideoProgress,
)

from .support import set_grok


async def test_upload_file(client: GrokClient, fake_grok: FakeGrok, out: Path) -> None:
    uploaded = await client.upload_file("tok", "notes.txt", "text/plain", b"hello upload")
    record = fake_grok.requests_to("upload")[0]
    assert record.json == {"fileName": "notes.txt", "fileMimeType": "text/plain",
                           "content": base64.b64encode(b"hello upload").decode()}
    user_id = fake_grok.accounts["tok"].user_id
    assert uploaded.file_uri == f"users/{user_id}/{uploaded.file_id}/content"
    image = await client.upload_file("tok", "p.png", "image/png", b"\x89PNG fake")
    saved = await client.download_asset("tok", image.file_uri, out / "p.png", max_bytes=100, kind="image")
    assert saved.path.read_bytes() == b"\x89PNG fake" and saved.size == 9


@pytest.mark.parametrize("shape", ["tokens", "queries"])
async def test_rate_limits_both_shapes(client: GrokClient, fake_grok: FakeGrok, shape: str) -> None:
    fake_grok.rate_limits_shape = shape  # type: ignore[assignment]
    fake_grok.add_account("tok", tier="super", limits={"grok-3": 3})
    assert await client.rate_limits("tok", "grok-3") == RateLimits(3, 3, 7200, None)
    for _ in range(3):
        [_ async for _ in client.chat("tok", ChatRequest("grok-3", "MODEL_MODE_GROK_3", "q"))]
    empty = await client.rate_limits("tok", "grok-3")
    assert (empty.remaining, empty.total, empty.window_seconds) == (0, 3, 7200)
    assert empty.wait_seconds is not None and 7190 <= empty.wait_seconds <= 7200
    assert fake_grok.requests_to("rate_limits")[0].json == {"requestKind": "DEFAULT", "modelName": "grok-3"}


async def test_rate_limits_of_a_bucket_without_allowance(client: GrokClient, fake_grok: FakeGrok) -> None:
    limits = await client.rate_limits("tok", "grok-4-heavy", request_kind="REASONING")
    assert limits == RateLimits(0, 0, 72000, 72000.0)
    assert fake_grok.requests_to("rate_limits")[0].json["requestKind"] == "REASONING"


def _fill(fake: FakeGrok, user_id: str, count: int) -> None:
    for n in range(count):
        fake.assets[f"users/{user_id}/f{n}/content"] = StoredAsset(f"f{n}", f"users/{user_id}/f{n}/content",
                                                                    "text/plain", b"x", user_id, name=f"{n}.txt",
                                                                    created=float(n))


async def test_list_assets_follows_pages(client: GrokClient, fake_grok: FakeGrok) -> None:
    account = fake_grok.add_account("tok")
    _fill(fake_grok, account.user_id, 120)
    _fill(fake_grok, "someone-else", 3)
    assets = await client.list_assets("tok")
    assert [a.asset_id for a in assets] == [f"f{n}" for n in reversed(range(120))]
    assert assets[0].name == "119.txt" and assets[0].mime_type == "text/plain"
    calls = fake_grok.requests_to("list_assets")
    assert [c.query.get("pageToken") for c in calls] == [None, "p50", "p100"]
    assert calls[0].query == {"pageSize": "50", "orderBy": "ORDER_BY_LAST_USE_TIME", "source": "SOURCE_ANY",
                              "isLatest": "true"}
    assert calls[0].headers["Referer"] == fake_grok.base_url + "/files"


async def test_list_assets_stops_on_a_repeated_page_token(client: GrokClient, fake_grok: FakeGrok) -> None:
    fake_grok.inject("repeat_page_token", times=None)
    await client.list_assets("tok")
    assert len(fake_grok.requests_to("list_assets")) == 2


async def test_delete_asset(client: GrokClient, fake_grok: FakeGrok, out: Path) -> None:
    uploaded = await client.upload_file("tok", "a.png", "image/png", b"png")
    await client.delete_asset("tok", uploaded.file_id)
    assert await client.list_assets("tok") == []
    assert fake_grok.requests_to("delete_asset")[0].path == f"/rest/assets-metadata/{uploaded.file_id}"
    for call in (client.delete_asset("tok", uploaded.file_id),
                 client.download_asset("tok", uploaded.file_uri, out / "a.png", max_bytes=10, kind="image")):
        with pytest.raises(UpstreamError) as caught:
            await call
        assert caught.value.failure is Failure.BAD_REQUEST and caught.value.status == 404


async def test_download_refuses_a_wrong_type_and_leaves_no_file(client: GrokClient, out: Path) -> None:
    uploaded = await client.upload_file("tok", "v.mp4", "video/mp4", b"\x00\x00\x00\x18ftypisom")
    with pytest.raises(UpstreamError) as caught:
        await client.download_asset("tok", uploaded.file_uri, out / "x.jpg", max_bytes=100, kind="image")
    assert caught.value.failure is Failure.PROTOCOL
    saved = await client.download_asset("tok", "/" + uploaded.file_uri, out / "v.mp4", max_bytes=100, kind="video")
    assert saved.size == 12
    assert sorted(p.name for p in out.iterdir()) == ["v.mp4"]


async def test_download_over_the_cap_leaves_no_file(client: GrokClient, out: Path) -> None:
    uploaded = await client.upload_file("tok", "big.png", "image/png", b"p" * 5000)
    with pytest.raises(UpstreamError) as caught:
        await client.download_asset("tok", uploaded.file_uri, out / "big.png", max_bytes=4999, kind="image")
    assert caught.value.failure is Failure.PROTOCOL
    assert list(out.iterdir()) == []


async def test_download_cap_holds_without_a_content_length(settings: Settings, client: GrokClient,
                                                           out: Path) -> None:
    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": request.query.get("type", "image/png")})
        await response.prepare(request)
        for _ in range(10):
            await response.write(request.query.get("first", "p").encode() + b"p" * 999)
        return response

    app = web.Application()
    app.router.add_get("/{name}", chunked)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    set_grok(settings, assets_url=f"http://127.0.0.1:{runner.addresses[0][1]}")
    try:
        saved = await client.download_asset("tok", "ok.png", out / "ok.png", max_bytes=10_000, kind="image")
        assert saved.size == 10_000
        for path, kind in (("big.png", "image"), ("page?type=text/html&first=<", "video")):
            with pytest.raises(UpstreamError) as caught:
                await client.download_asset("tok", path, out / "no", max_bytes=9_999, kind=kind)  # type: ignore[arg-type]
            assert caught.value.failure is Failure.PROTOCOL
        assert sorted(p.name for p in out.iterdir()) == ["ok.png"]
    finally:
        await runner.cleanup()


async def test_download_sends_cookies_only_to_grok_origins(client: GrokClient, fake_grok: FakeGrok,
                                                           out: Path) -> None:
    with pytest.raises(UpstreamError) as caught:
        await client.download_asset("tok", "http://elsewhere.example/x.jpg", out / "x", max_bytes=9, kind="image")
    assert caught.value.failure is Failure.PROTOCOL and not fake_grok.requests
    uploaded = await client.upload_file("tok", "a.png", "image/png", b"png")
    await client.download_asset("tok", client.asset_url(uploaded.file_uri), out / "a.png", max_bytes=9,
                                kind="image")
    record = fake_grok.requests_to("asset")[0]
    assert record.sso == "tok" and "x-statsig-id" not in record.headers
    assert record.headers["Sec-Fetch-Mode"] == "navigate"


def test_asset_url(client: GrokClient, fake_grok: FakeGrok) -> None:
    assert client.asset_url("users/u/x/content") == fake_grok.assets_url + "/users/u/x/content"
    assert client.asset_url("/users/u/x/content") == fake_grok.assets_url + "/users/u/x/content"
    assert client.asset_url("https://imagine-public.x.ai/i.jpg") == "https://imagine-public.x.ai/i.jpg"


async def test_media_posts(client: GrokClient, fake_grok: FakeGrok) -> None:
    video = await client.create_media_post("tok", media_type="video", prompt="a boat")
    image = await client.create_media_post("tok", media_type="MEDIA_POST_TYPE_IMAGE",
                                           media_url=client.asset_url("users/u/f/content"))
    assert fake_grok.posts[video]["prompt"] == "a boat"
    assert fake_grok.posts[image]["mediaType"] == "MEDIA_POST_TYPE_IMAGE"
    first, second = fake_grok.requests_to("media_post")
    assert first.json == {"mediaType": "MEDIA_POST_TYPE_VIDEO", "prompt": "a boat"}
    assert second.json == {"mediaType": "MEDIA_POST_TYPE_IMAGE",
                           "mediaUrl": fake_grok.assets_url + "/users/u/f/content"}
    assert first.headers["Referer"] == fake_grok.base_url + "/imagine"
    with pytest.raises(UpstreamError) as caught:
        await client.create_media_post("tok", media_type="video")
    assert caught.value.failure is Failure.BAD_REQUEST and caught.value.status == 400


async def test_upscale_video(client: GrokClient, fake_grok: FakeGrok, out: Path) -> None:
    post = await client.create_media_post("tok", media_type="video", prompt="boat")
    request = ChatRequest("grok-3", "", "boat --mode=normal", tool_overrides={"videoGen": True},
                          model_map={"videoGenModelConfig": {"parentPostId": post}})
    video = [e async for e in client.chat("tok", request) if isinstance(e, VideoProgress)][-1]
    hd = await client.upscale_video("tok", video.video_id)
    assert fake_grok.requests_to("upscale")[0].json == {"videoId": video.video_id}
    saved = await client.download_asset("tok", hd, out / "hd.mp4", max_bytes=1000, kind="video")
    assert hd.endswith("generated_video_hd.mp4") and saved.content_type == "video/mp4"
    with pytest.raises(UpstreamError) as caught:
        await client.upscale_video("other", video.video_id)
    assert caught.value.failure is Failure.BAD_REQUEST


async def test_imagine_pictures(client: GrokClient, fake_grok: FakeGrok, out: Path) -> None:
    events = [e async for e in client.imagine("tok", "a lighthouse", aspect_ratio="1:1")]
    started = [e for e in events if isinstance(e, ImagineSlotStarted)]
    finals = [e for e in events if isinstance(e, ImagineImage) and e.final]
    assert [e.order for e in started] == [0, 1, 2, 3] and (started[0].width, started[0].height) == (1024, 1024)
    assert sorted(e.order for e in finals) == [0, 1, 2, 3]
    previews = [e for e in events if isinstance(e, ImagineImage) and not e.final]
    assert {e.mime_type for e in previews} == {"image/png", "image/jpeg"}
    assert len(finals[0].blob_base64) > 100_000 and base64.b64decode(finals[0].blob_base64)[:2] == b"\xff\xd8"
    assert all(len(e.blob_base64) < 30_000 for e in previews if e.percentage < 50)
    # slot 1 completes before its final picture arrives; the stream still waits for it
    slot1 = [type(e).__name__ for e in events if getattr(e, "order", None) == 1]
    assert slot1[-2:] == ["ImagineSlotDone", "ImagineImage"]
    saved = await client.download_asset("tok", finals[0].url, out / "f.jpg", max_bytes=200_000, kind="image")
    assert saved.path.read_bytes() == base64.b64decode(finals[0].blob_base64)
    record = fake_grok.requests_to("imagine")[0]
    assert record.sso == "tok" and record.headers["Origin"] == fake_grok.base_url
    content = record.ws_messages[0]["item"]["content"][0]
    assert content["type"] == "input_scroll" and content["text"] == "a lighthouse"
    assert content["properties"]["aspect_ratio"] == "1:1"


async def test_imagine_stops_after_count_slots(client: GrokClient) -> None:
    events = [e async for e in client.imagine("tok", "two please", count=2)]
    done = [e for e in events if isinstance(e, ImagineSlotDone)]
    assert sorted(e.order for e in done) == [0, 1] and events[-1] == next(
        e for e in events if isinstance(e, ImagineImage) and e.final and e.order == 1)


async def test_imagine_moderated_slots(client: GrokClient) -> None:
    events = [e async for e in client.imagine("tok", "[moderate] nope")]
    assert [e.moderated for e in events if isinstance(e, ImagineSlotDone)] == [True] * 4
    assert not any(isinstance(e, ImagineImage) and e.final for e in events)


async def test_imagine_ends_when_the_server_closes(client: GrokClient, fake_grok: FakeGrok) -> None:
    fake_grok.imagine_close_after_round = True
    events = [e async for e in client.imagine("tok", "more than there is", count=10)]
    assert len([e for e in events if isinstance(e, ImagineSlotDone)]) == 4


async def test_imagine_error_frame(client: GrokClient, fake_grok: FakeGrok) -> None:
    fake_grok.inject("imagine_error", message="slow down")
    with pytest.raises(UpstreamError) as caught:
        [e async for e in client.imagine("tok", "x")]
    assert caught.value.failure is Failure.RATE_LIMITED and "slow down" in caught.value.message
