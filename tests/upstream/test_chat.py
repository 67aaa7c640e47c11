"""GrokClient.chat against the fake over loopback: bodies, headers, replies, stream shapes,
aborts and connection reuse."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from pathlib import Path

import pytest

from grok2api.config.settings import Settings
from grok2api.testing.fake_grok import FakeGrok
from grok2api.upstream import (
    CardAttachment,
    ChatRequest,
    Event,
    Failure,
    GrokClient,
    ImageProgress,
    ModelResponse,
    TextDelta,
    UpstreamError,
    VideoProgress,
    WebSearchResults,
)
from grok2api.upstream.stream import joined

from .support import set_grok

PLAIN = ChatRequest("grok-4-1-thinking-1129", "MODEL_MODE_FAST", "system: be terse\n\nWhat is the capital of Peru?")


async def collect(client: GrokClient, request: ChatRequest = PLAIN, token: str = "tok") -> list[Event]:
    return [event async for event in client.chat(token, request)]


def final_text(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta) and e.tag == "final")


def answer(events: list[Event]) -> ModelResponse:
    return next(e for e in events if isinstance(e, ModelResponse))


async def test_plain_reply_echoes_the_last_line(client: GrokClient, fake_grok: FakeGrok) -> None:
    events = await collect(client)
    assert final_text(events) == "Echo: What is the capital of Peru?" == answer(events).message
    body = fake_grok.requests_to("chat")[0].json
    assert body["modelName"] == "grok-4-1-thinking-1129" and body["modelMode"] == "MODEL_MODE_FAST"
    assert body["message"] == PLAIN.message and body["temporary"] is True
    assert body["responseMetadata"]["requestModelDetails"] == {"modelId": "grok-4-1-thinking-1129"}


async def test_request_fields_reach_the_upstream(client: GrokClient, fake_grok: FakeGrok,
                                                 settings: Settings) -> None:
    set_grok(settings, temporary=False)
    request = ChatRequest("grok-3", "MODEL_MODE_FAST", "hi", file_attachments=["f-1"],
                          tool_overrides={"imageGen": True}, model_map={"imageEditModel": "imagine"},
                          image_generation_count=1)
    await collect(client, request)
    await collect(client, ChatRequest("grok-3", "MODEL_MODE_FAST", "hi", temporary=True))
    first, second = (r.json for r in fake_grok.requests_to("chat"))
    assert first["fileAttachments"] == ["f-1"] and first["toolOverrides"] == {"imageGen": True}
    assert first["responseMetadata"]["modelConfigOverride"]["modelMap"] == {"imageEditModel": "imagine"}
    assert first["imageGenerationCount"] == 1 and first["temporary"] is False
    assert second["temporary"] is True


async def test_headers_cookie_and_statsig(client: GrokClient, fake_grok: FakeGrok, settings: Settings) -> None:
    set_grok(settings, cf_clearance="clear-1")
    await collect(client, token="sso=abc.def; other=1")
    await collect(client, ChatRequest("grok-3", "", "boat --mode=normal", tool_overrides={"videoGen": True}),
                  token="abc.def")
    first, second = fake_grok.requests_to("chat")
    assert first.headers["Cookie"] == "sso=abc.def; sso-rw=abc.def; cf_clearance=clear-1"
    assert first.sso == second.sso == "abc.def"
    assert first.headers["Origin"] == fake_grok.base_url
    assert first.headers["Referer"] == fake_grok.base_url + "/"
    assert second.headers["Referer"] == fake_grok.base_url + "/imagine"
    assert first.headers["Content-Type"] == "application/json"
    assert "Chrome/136" in first.headers["User-Agent"] and 'v="136"' in first.headers["Sec-Ch-Ua"]
    statsigs = [base64.b64decode(r.headers["x-statsig-id"]).decode() for r in (first, second)]
    assert all(s.startswith("e:TypeError: Cannot read properties of ") for s in statsigs)
    assert statsigs[0] != statsigs[1]
    ids = {r.headers["x-xai-request-id"] for r in (first, second)}
    assert len(ids) == 2 and all(uuid.UUID(i).version == 4 for i in ids)


async def test_static_statsig_when_dynamic_is_off(client: GrokClient, fake_grok: FakeGrok,
                                                  settings: Settings) -> None:
    set_grok(settings, dynamic_statsig=False)
    await collect(client)
    static = base64.b64encode(b"e:TypeError: Cannot read properties of undefined (reading 'childNodes')").decode()
    configured = base64.b64encode(b"x1:copied from a browser").decode()
    set_grok(settings, statsig_id=configured)
    await collect(client)
    assert [r.headers["x-statsig-id"] for r in fake_grok.requests_to("chat")] == [static, configured]


async def test_thinking_reply(client: GrokClient) -> None:
    events = await collect(client, ChatRequest("grok-4", "MODEL_MODE_GROK_4_THINKING", "latest python?"))
    thinking = [e for e in events if isinstance(e, TextDelta) and e.thinking]
    assert [e.tag for e in thinking] == ["header", "analysis", "tool_usage_card"]
    assert next(e for e in events if isinstance(e, WebSearchResults)).results[0]["title"] == "About latest python?"
    card = next(e for e in events if isinstance(e, CardAttachment)).card
    assert card["type"] == "render_inline_citation"
    text = final_text(events)
    assert text.startswith("Echo: latest python?<grok:render card_id=\"cite-01\"") and text.endswith(".")
    assert answer(events).message == text and answer(events).card_attachments == [card]


async def test_image_reply_assets_belong_to_the_account(client: GrokClient, out: Path) -> None:
    events = await collect(client, ChatRequest("grok-3", "MODEL_MODE_FAST", "Image Generation: a red fox"))
    progress = [e for e in events if isinstance(e, ImageProgress)]
    assert sorted({(e.index, e.progress) for e in progress}) == [(0, 5), (0, 50), (0, 100), (1, 5), (1, 50), (1, 100)]
    urls = answer(events).generated_image_urls
    assert len(urls) == 2 and urls == [e.url for e in progress if e.progress == 100]
    saved = await client.download_asset("tok", urls[0], out / "a.jpg", max_bytes=10_000, kind="image")
    assert saved.content_type == "image/jpeg" and saved.path.read_bytes().startswith(b"\xff\xd8")
    assert urls[0].encode() in saved.path.read_bytes()
    with pytest.raises(UpstreamError) as caught:
        await client.download_asset("someone-else", urls[1], out / "b.jpg", max_bytes=10_000, kind="image")
    assert caught.value.status == 403 and not (out / "b.jpg").exists()


async def test_moderated_images_and_video(client: GrokClient) -> None:
    images = await collect(client, ChatRequest("grok-3", "MODEL_MODE_FAST", "Image Generation: [moderate] x"))
    assert all(e.moderated and not e.url for e in images if isinstance(e, ImageProgress) and e.progress == 100)
    assert answer(images).generated_image_urls == []
    video = await collect(client, ChatRequest("grok-3", "", "[moderate] --mode=normal",
                                              tool_overrides={"videoGen": True}))
    last = [e for e in video if isinstance(e, VideoProgress)][-1]
    assert last.progress == 100 and last.moderated and not last.url


async def test_video_reply(client: GrokClient, out: Path) -> None:
    model_map = {"videoGenModelConfig": {"parentPostId": "post-9", "aspectRatio": "3:2", "videoLength": 6,
                                         "videoResolution": "SD"}}
    events = await collect(client, ChatRequest("grok-3", "", "a paper boat --mode=normal",
                                               tool_overrides={"videoGen": True}, model_map=model_map))
    progress = [e for e in events if isinstance(e, VideoProgress)]
    assert [e.progress for e in progress] == [1, 18, 47, 83, 100] and {e.post_id for e in progress} == {"post-9"}
    assert progress[-1].url.endswith("/generated_video.mp4")
    assert answer(events).file_attachments == [progress[0].video_id]
    assert events[-2] == TextDelta("I generated a video with the prompt: a paper boat")
    saved = await client.download_asset("tok", progress[-1].url, out / "v.mp4", max_bytes=10_000, kind="video")
    assert saved.content_type == "video/mp4" and saved.path.read_bytes()[4:8] == b"ftyp"


@pytest.mark.parametrize("shape", [{"kind": "split_lines", "seed": 7}, {"kind": "merge_lines"}, {"kind": "sse"},
                                   {"kind": "split_lines", "seed": 3, "times": 1, "endpoint": "chat"}])
async def test_stream_shapes_give_the_same_events(client: GrokClient, fake_grok: FakeGrok, shape: dict) -> None:
    request = ChatRequest("grok-4", "MODEL_MODE_GROK_4_THINKING", "shapes")
    plain = await collect(client, request)
    fake_grok.inject(**shape)
    shaped = await collect(client, request)
    assert final_text(shaped) == final_text(plain) and answer(shaped).message == answer(plain).message
    # text that arrives together is joined, so only the grouping of text may differ
    assert [type(e) for e in joined(shaped)] == [type(e) for e in joined(plain)]


async def test_split_and_merged_lines_together(client: GrokClient, fake_grok: FakeGrok) -> None:
    fake_grok.inject("split_lines", seed=11)
    fake_grok.inject("merge_lines")
    assert answer(await collect(client)).message == "Echo: What is the capital of Peru?"


async def test_truncated_after_grok_said_it_was_done_just_ends(client: GrokClient, fake_grok: FakeGrok) -> None:
    fake_grok.inject("truncate", after_lines=12, mid_line=True)  # half of the modelResponse line
    events = await collect(client)
    assert final_text(events) == "Echo: What is the capital of Peru?"
    assert not any(isinstance(e, ModelResponse) for e in events)


@pytest.mark.parametrize("mid_line", [False, True])
async def test_truncated_mid_answer_is_a_protocol_error(client: GrokClient, fake_grok: FakeGrok,
                                                        mid_line: bool) -> None:
    fake_grok.inject("truncate", after_lines=5, mid_line=mid_line)  # two tokens of the answer, then the end
    events: list[Event] = []
    with pytest.raises(UpstreamError) as caught:
        async for event in client.chat("tok", PLAIN):
            events.append(event)
    assert caught.value.failure is Failure.PROTOCOL and "cut off" in caught.value.message
    assert final_text(events).startswith("Echo:")


@pytest.mark.parametrize("mid_line", [False, True])
async def test_truncated_before_any_answer_is_a_protocol_error(client: GrokClient, fake_grok: FakeGrok,
                                                                mid_line: bool) -> None:
    fake_grok.inject("truncate", after_lines=3, mid_line=mid_line)
    with pytest.raises(UpstreamError) as caught:
        await collect(client)
    assert caught.value.failure is Failure.PROTOCOL


async def _wait_disconnected(fake: FakeGrok) -> float:
    start = time.monotonic()
    while not fake.requests_to("chat")[-1].disconnected:
        assert time.monotonic() - start < 2, "the upstream request was not aborted"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def test_closing_the_generator_aborts_the_request(client: GrokClient, fake_grok: FakeGrok) -> None:
    fake_grok.inject("idle_gap", after_lines=3, delay=5)
    stream = client.chat("tok", PLAIN)
    first = await anext(stream)
    await stream.aclose()
    assert first.conversation_id
    assert await _wait_disconnected(fake_grok) < 1


async def test_cancelling_the_consumer_aborts_the_request(client: GrokClient, fake_grok: FakeGrok) -> None:
    fake_grok.inject("idle_gap", after_lines=3, delay=5)
    task = asyncio.create_task(collect(client))
    while not fake_grok.requests_to("chat"):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _wait_disconnected(fake_grok) < 1


async def test_an_answer_arriving_after_the_caller_gave_up_is_aborted(client: GrokClient, fake_grok: FakeGrok,
                                                                       settings: Settings) -> None:
    set_grok(settings, first_byte_timeout=0.2)
    fake_grok.inject("slow_first_byte", delay=0.4)
    fake_grok.inject("idle_gap", after_lines=2, delay=5)
    with pytest.raises(UpstreamError) as caught:
        await collect(client)
    assert caught.value.failure is Failure.TIMEOUT_FIRST_BYTE
    assert await _wait_disconnected(fake_grok) < 1


async def test_connections_are_reused(client: GrokClient, fake_grok: FakeGrok) -> None:
    await collect(client)
    await collect(client)
    await client.rate_limits("tok", "grok-3")
    assert len({r.peer for r in fake_grok.requests}) == 1


async def test_settings_are_read_at_call_time(client: GrokClient, settings: Settings) -> None:
    async with FakeGrok() as other:
        set_grok(settings, **other.grok_settings())
        await collect(client)
        assert len(other.requests_to("chat")) == 1


async def test_close_is_idempotent(settings: Settings) -> None:
    grok = GrokClient(settings)
    assert answer(await collect(grok)).message.startswith("Echo:")
    await grok.close()
    await grok.close()
