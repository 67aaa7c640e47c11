"""The video model through chat completions: streaming and not, ``video_config``, image-to-video, HD."""

from __future__ import annotations

import base64
import re
from typing import Any

import httpx2 as httpx
import openai
import pytest

from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.fake_grok.faults import Endpoint
from grok2api.testing.fake_grok.media import png

from .conftest import StartGateway

MODEL = "grok-imagine-1.0-video"
_SRC = re.compile(r'<source src="([^"]+)" type="video/mp4">')


def video_body(fake: FakeGrok) -> dict[str, Any]:
    (chat,) = fake.requests_to(Endpoint.CHAT)
    assert isinstance(chat.json, dict)
    return chat.json


async def fetch(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.get(url)


async def test_non_streaming_answer_is_a_video_element(start_gateway: StartGateway, fake_grok: FakeGrok) -> None:
    live = await start_gateway()
    async with live.aclient() as client:
        done = await client.chat.completions.create(
            model=MODEL, stream=False, messages=[{"role": "user", "content": "a cat surfing"}],
            extra_body={"video_config": {"aspect_ratio": "16:9", "video_length": 10, "preset": "fun"}})
    content = done.choices[0].message.content or ""
    assert content.startswith('<video id="video" controls preload="none" poster="')
    (link,) = _SRC.findall(content)
    served = await fetch(link)
    assert served.status_code == 200 and served.headers["content-type"] == "video/mp4"
    body = video_body(fake_grok)
    assert body["message"] == "a cat surfing --mode=extremely-crazy"
    assert body["toolOverrides"] == {"videoGen": True} and body["temporary"] is True
    config = body["responseMetadata"]["modelConfigOverride"]["modelMap"]["videoGenModelConfig"]
    (post,) = fake_grok.requests_to(Endpoint.MEDIA_POST)
    assert post.json == {"mediaType": "MEDIA_POST_TYPE_VIDEO", "prompt": "a cat surfing"}
    assert config["aspectRatio"] == "16:9" and config["videoLength"] == 10 and config["videoResolution"] == "SD"
    assert config["parentPostId"] in fake_grok.posts
    assert await live.video_used() == 1


async def test_streaming_progress_is_reasoning(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    async with live.aclient() as client:
        stream = await client.chat.completions.create(
            model=MODEL, stream=True, messages=[{"role": "user", "content": "waves"}])
        chunks = [chunk async for chunk in stream]
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert reasoning == "".join(f"Generating video: {p}%\n" for p in (1, 18, 47, 83, 100))
    assert "<video" in content and "<think>" not in content
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_think_tags_and_poster_preview(start_gateway: StartGateway) -> None:
    live = await start_gateway(chat={"reasoning_format": "think_tags"}, video={"poster_preview": True})
    async with live.aclient() as client:
        done = await client.chat.completions.create(
            model=MODEL, stream=False, messages=[{"role": "user", "content": "waves"}])
    content = done.choices[0].message.content or ""
    assert content.startswith("<think>\nGenerating video: 1%\n")
    html = content.split("</think>\n\n", 1)[1]
    assert html.startswith('<a href="') and 'target="_blank"' in html and "<img src=" in html
    assert "<video" not in html


async def test_thinking_off_hides_progress(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    async with live.aclient() as client:
        done = await client.chat.completions.create(
            model=MODEL, stream=False, messages=[{"role": "user", "content": "waves"}],
            extra_body={"thinking": "disabled"})
    message = done.choices[0].message
    assert not getattr(message, "reasoning_content", None) and (message.content or "").startswith("<video")


@pytest.mark.parametrize(("field", "value"), [
    ("aspect_ratio", "4:3"), ("aspect_ratio", 1), ("video_length", 4), ("video_length", 16),
    ("video_length", "long"), ("video_length", True), ("resolution", "4K"), ("preset", "wild"),
])
async def test_invalid_video_config_names_the_field(start_gateway: StartGateway, fake_grok: FakeGrok,
                                                    field: str, value: Any) -> None:
    live = await start_gateway()
    async with live.aclient() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}],
                extra_body={"video_config": {field: value}})
    assert caught.value.param == f"video_config.{field}"
    assert not fake_grok.requests_to(Endpoint.CHAT) and await live.video_used() == 0


@pytest.mark.parametrize(("field", "values"), [
    ("aspect_ratio", ["16:9", "9:16", "1:1", "2:3", "3:2"]), ("video_length", [5, 15]),
    ("preset", ["fun", "normal", "spicy", "custom"]),
])
async def test_every_valid_value_reaches_grok(start_gateway: StartGateway, fake_grok: FakeGrok, field: str,
                                              values: list[Any]) -> None:
    live = await start_gateway()
    suffix = {"fun": "--mode=extremely-crazy", "normal": "--mode=normal", "spicy": "--mode=extremely-spicy-or-crazy",
              "custom": "--mode=custom"}
    async with live.aclient() as client:
        for value in values:
            await client.chat.completions.create(model=MODEL, stream=False,
                                                 messages=[{"role": "user", "content": "x"}],
                                                 extra_body={"video_config": {field: value}})
    bodies = [r.json for r in fake_grok.requests_to(Endpoint.CHAT)]
    configs = [b["responseMetadata"]["modelConfigOverride"]["modelMap"]["videoGenModelConfig"]
               for b in bodies]
    if field == "preset":
        assert [b["message"] for b in bodies] == [f"x {suffix[v]}" for v in values]
    else:
        key = {"aspect_ratio": "aspectRatio", "video_length": "videoLength"}[field]
        assert [c[key] for c in configs] == values


async def test_image_to_video_uploads_the_picture(start_gateway: StartGateway, fake_grok: FakeGrok) -> None:
    live = await start_gateway()
    picture = png("a source picture")
    uri = "data:image/png;base64," + base64.b64encode(picture).decode()
    async with live.aclient() as client:
        done = await client.chat.completions.create(model=MODEL, stream=False, messages=[
            {"role": "user", "content": [{"type": "text", "text": "make it move"},
                                         {"type": "image_url", "image_url": {"url": uri}}]}])
    assert "<video" in (done.choices[0].message.content or "")
    (upload,) = fake_grok.requests_to(Endpoint.UPLOAD)
    assert isinstance(upload.json, dict) and base64.b64decode(upload.json["content"]) == picture
    (post,) = fake_grok.requests_to(Endpoint.MEDIA_POST)
    assert isinstance(post.json, dict) and post.json["mediaType"] == "MEDIA_POST_TYPE_IMAGE"
    assert post.json["mediaUrl"].startswith(fake_grok.assets_url + "/users/")
    assert video_body(fake_grok)["message"] == "make it move --mode=custom"


async def test_audio_is_refused(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    async with live.aclient() as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}])
    assert caught.value.param == "messages[0].content[0].input_audio.data"


async def test_hd_delivers_the_upscaled_video(start_gateway: StartGateway, fake_grok: FakeGrok) -> None:
    live = await start_gateway()
    async with live.aclient() as client:
        done = await client.chat.completions.create(model=MODEL, stream=False,
                                                    messages=[{"role": "user", "content": "x"}],
                                                    extra_body={"video_config": {"resolution": "HD"}})
    content = done.choices[0].message.content or ""
    (link,) = _SRC.findall(content)
    assert link.endswith("generated_video_hd.mp4") and "failed" not in content
    (upscale,) = fake_grok.requests_to(Endpoint.UPSCALE)
    assert isinstance(upscale.json, dict) and upscale.json["videoId"] in link
    assert (await fetch(link)).status_code == 200


async def test_failed_upscale_delivers_sd_and_says_so(start_gateway: StartGateway, fake_grok: FakeGrok) -> None:
    live = await start_gateway()
    fake_grok.inject("server_error", endpoint=Endpoint.UPSCALE)
    async with live.aclient() as client:
        stream = await client.chat.completions.create(model=MODEL, stream=True,
                                                      messages=[{"role": "user", "content": "x"}],
                                                      extra_body={"video_config": {"resolution": "HD"}})
        content = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    (link,) = _SRC.findall(content)
    assert link.endswith("generated_video.mp4")
    assert "HD upscaling failed" in content and "this is the SD video" in content
    assert await live.video_used() == 1
