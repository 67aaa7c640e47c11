"""Attachments: inline ones uploaded to the account that answers, remote ones fetched only when allowed."""

from __future__ import annotations

import asyncio
import base64

import openai
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionContentPartImageParam
from pytest_aiohttp import AiohttpServer

from grok2api_plugins.chat.usage import IMAGE_BASE, count_tokens

from .conftest import StartGateway
from .support import error_of, usage_of

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32
WAV = b"RIFF\x00\x00\x00\x00WAVEfmt "
PDF = b"%PDF-1.4 tiny"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
async def origin(aiohttp_server: AiohttpServer) -> TestServer:
    async def image(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    app = web.Application()
    app.router.add_get("/pictures/cat.png", image)
    return await aiohttp_server(app, host="127.0.0.1")


async def test_inline_attachments_are_uploaded_and_attached(start_gateway: StartGateway) -> None:
    live = await start_gateway()
    answer = await live.aclient().chat.completions.create(model="grok-4", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is in these?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{b64(PNG)}"}},
        {"type": "input_audio", "input_audio": {"data": b64(WAV), "format": "wav"}},
        {"type": "file", "file": {"filename": "notes.pdf", "file_data": f"data:application/pdf;base64,{b64(PDF)}"}},
    ]}])
    assert answer.choices[0].message.content == "Echo: What is in these?"
    # the PNG's size cannot be read (base cost), the WAV has no data chunk (estimated by
    # size: 1 token), the "PDF" is text
    usage = usage_of(answer)
    assert usage.prompt_tokens == count_tokens("What is in these?") + IMAGE_BASE + 1 + count_tokens(PDF.decode())
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.audio_tokens == 1
    uploads = live.fake.requests_to("upload")
    got = [(u.json["fileName"], u.json["fileMimeType"], base64.b64decode(u.json["content"])) for u in uploads]
    assert sorted(got) == sorted([("image.png", "image/png", PNG), ("audio.wav", "audio/wav", WAV),
                                  ("notes.pdf", "application/pdf", PDF)])
    (chat,) = live.chats()
    assert len(chat.json["fileAttachments"]) == 3 and all(u.sso == chat.sso for u in uploads)


async def test_uploads_follow_the_account_when_the_pool_rotates(start_gateway: StartGateway) -> None:
    live = await start_gateway(basic=["basic-1", "basic-2"])
    first = live.fake.inject("rate_limited", endpoint="upload", retry_after=30)
    image: ChatCompletionContentPartImageParam = {"type": "image_url",
                                                  "image_url": {"url": f"data:image/png;base64,{b64(PNG)}"}}
    answer = await live.aclient().chat.completions.create(
        model="grok-4", messages=[{"role": "user", "content": [{"type": "text", "text": "rotate"}, image]}])
    assert answer.choices[0].message.content == "Echo: rotate" and first.times == 0
    uploads = live.fake.requests_to("upload")
    (chat,) = live.chats()
    assert [u.sso for u in uploads][-1] == chat.sso and uploads[0].sso != chat.sso


async def test_remote_urls_are_refused_for_local_addresses(start_gateway: StartGateway, origin: TestServer) -> None:
    live = await start_gateway()
    client = live.client()
    url = f"http://localhost:{origin.port}/pictures/cat.png"

    def ask() -> None:
        client.chat.completions.create(model="grok-4", messages=[{"role": "user", "content": [
            {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": url}}]}])

    with pytest.raises(openai.BadRequestError) as caught:
        await asyncio.to_thread(ask)
    error = error_of(caught.value)
    assert error["param"] == "messages[0].content[1].image_url.url"
    assert error["code"] == "attachment_url_refused" and "loopback" in error["message"]
    assert not live.chats() and not live.fake.requests_to("upload")


async def test_remote_urls_are_fetched_from_allowed_networks(start_gateway: StartGateway, origin: TestServer) -> None:
    live = await start_gateway(chat={"fetch_allow_networks": ["127.0.0.0/8", "::1/128"]})
    url = f"http://localhost:{origin.port}/pictures/cat.png"
    answer = await live.aclient().chat.completions.create(model="grok-4", messages=[{"role": "user", "content": [
        {"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": url}}]}])
    assert answer.choices[0].message.content == "Echo: look"
    (upload,) = live.fake.requests_to("upload")
    assert (upload.json["fileName"], base64.b64decode(upload.json["content"])) == ("cat.png", PNG)
