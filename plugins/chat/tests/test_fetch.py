"""Attachment loading: the SSRF refusals, caps, and a real fetch from an explicitly allowed network."""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pytest_aiohttp import AiohttpServer

from grok2api.api import ApiError, address_refusal
from grok2api_plugins.chat.fetch import AttachmentLoader
from grok2api_plugins.chat.request import Attachment
from grok2api_plugins.chat.settings import ChatSettings

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
async def origin(aiohttp_server: AiohttpServer) -> TestServer:
    async def image(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()  # no Content-Length: the cap must hold while reading
        await response.prepare(request)
        for _ in range(40):
            await response.write(b"x" * 65536)
        return response

    async def hop(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    app = web.Application()
    app.router.add_get("/cat.png", image)
    app.router.add_get("/big", big)
    app.router.add_get("/hop", hop)
    return await aiohttp_server(app, host="127.0.0.1")


def loader_for(**settings: object) -> tuple[AttachmentLoader, ChatSettings]:
    config = ChatSettings(**settings)
    return AttachmentLoader(lambda: config), config


@pytest.fixture
async def loader() -> AsyncIterator[AttachmentLoader]:
    loader, _ = loader_for()
    yield loader
    await loader.close()


async def refused(loader: AttachmentLoader, source: str, kind: str = "image") -> ApiError:
    with pytest.raises(ApiError) as caught:
        await loader.load(Attachment(kind, source, "messages[0].content[1].image_url.url"))  # type: ignore[arg-type]
    assert caught.value.status == 400
    assert caught.value.param == "messages[0].content[1].image_url.url"
    return caught.value


@pytest.mark.parametrize(("address", "why"), [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("192.168.0.1", "private"),
    ("169.254.169.254", "link-local"), ("fe80::1", "link-local"), ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"), ("0.0.0.0", "unspecified"), ("::ffff:127.0.0.1", "loopback"),
    ("100.64.0.1", "non-public"), ("8.8.8.8", None), ("2606:4700::1111", None),
])
def test_address_classes(address: str, why: str | None) -> None:
    assert address_refusal(ipaddress.ip_address(address), []) == why


def test_allowed_networks_exempt_addresses() -> None:
    assert address_refusal(ipaddress.ip_address("127.0.0.1"), [ipaddress.ip_network("127.0.0.0/8")]) is None


async def test_local_addresses_are_refused_by_name_and_by_literal(loader: AttachmentLoader,
                                                                  origin: TestServer) -> None:
    by_name = await refused(loader, f"http://localhost:{origin.port}/cat.png")
    assert by_name.code == "attachment_url_refused" and "loopback" in by_name.message
    by_literal = await refused(loader, f"http://127.0.0.1:{origin.port}/cat.png")
    assert "127.0.0.1 is a loopback address" in by_literal.message
    assert (await refused(loader, "http://[::ffff:10.0.0.1]/x")).code == "attachment_url_refused"
    assert (await refused(loader, "http://169.254.169.254/latest/meta-data/")).code == "attachment_url_refused"


async def test_an_allowed_network_is_fetched_and_redirects_are_checked_again(origin: TestServer) -> None:
    loader, config = loader_for(fetch_allow_networks=["127.0.0.0/8"])
    try:
        blob = await loader.load(Attachment("image", f"http://localhost:{origin.port}/cat.png", "p"))
        assert (blob.data, blob.mime, blob.filename) == (PNG, "image/png", "cat.png")
        hop = f"http://127.0.0.1:{origin.port}/hop?to=http://10.0.0.1/x"
        assert "10.0.0.1 is a private address" in (await refused(loader, hop)).message
        config.fetch_max_redirects = 0
        hop = f"http://127.0.0.1:{origin.port}/hop?to=/cat.png"
        assert "redirects" in (await refused(loader, hop)).message
        config.fetch_max_mb = 1
        assert (await refused(loader, f"http://127.0.0.1:{origin.port}/big")).code == "attachment_too_large"
        missing = await refused(loader, f"http://127.0.0.1:{origin.port}/missing")
        assert "HTTP 404" in missing.message
    finally:
        await loader.close()


async def test_inline_data_is_decoded_and_capped() -> None:
    loader, config = loader_for(inline_max_mb=0.001)
    blob = await loader.load(Attachment("image", "data:image/png;base64," + base64.b64encode(PNG).decode(), "p"))
    assert (blob.data, blob.mime, blob.filename) == (PNG, "image/png", "image.png")
    audio = await loader.load(Attachment("audio", base64.b64encode(b"RIFF").decode(), "p", "audio.wav", "audio/wav"))
    assert (audio.data, audio.mime, audio.filename) == (b"RIFF", "audio/wav", "audio.wav")
    text = await loader.load(Attachment("file", "data:text/plain,hello%20there", "p", "notes.txt"))
    assert (text.data, text.mime, text.filename) == (b"hello there", "text/plain", "notes.txt")
    big = "data:image/png;base64," + base64.b64encode(b"x" * 2000).decode()
    assert (await refused(loader, big)).code == "attachment_too_large"
    assert (await refused(loader, "data:image/png;base64,@@@")).code == "invalid_base64"
    assert (await refused(loader, "data:image/png;base64")).code == "invalid_data_uri"
