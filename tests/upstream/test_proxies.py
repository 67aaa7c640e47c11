"""Base and asset proxies, HTTP and SOCKS5, on loopback only.

The fake doubles as an HTTP forward proxy for plain-HTTP origins (it answers the
absolute-form request curl sends to a proxy), and a tiny SOCKS5 relay stands in for a
SOCKS proxy. Origins use names that do not resolve, so only a proxy can reach them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from grok2api.config.settings import Settings
from grok2api.testing.fake_grok import FakeGrok
from grok2api.upstream import ChatRequest, GrokClient, ModelResponse

from .support import set_grok


class Socks5Relay:
    """SOCKS5 without authentication, CONNECT only; every target is relayed to loopback."""

    def __init__(self) -> None:
        self.targets: list[tuple[str, int]] = []
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"socks5h://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, methods = await reader.readexactly(2)
        await reader.readexactly(methods)
        writer.write(b"\x05\x00")
        _, _, _, kind = await reader.readexactly(4)
        size = {1: 4, 4: 16}.get(kind) or (await reader.readexactly(1))[0]
        host = await reader.readexactly(size)
        port = int.from_bytes(await reader.readexactly(2), "big")
        self.targets.append((host.decode() if kind == 3 else host.hex(), port))
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x05\x00\x00\x01" + bytes(6))
        await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


@pytest_asyncio.fixture
async def socks() -> AsyncIterator[Socks5Relay]:
    relay = Socks5Relay()
    relay.server = await asyncio.start_server(relay._handle, "127.0.0.1", 0)
    yield relay
    relay.server.close()


async def test_http_base_proxy(client: GrokClient, fake_grok: FakeGrok, settings: Settings) -> None:
    set_grok(settings, base_url="http://grok.test", base_proxy_url=fake_grok.base_url)
    events = [e async for e in client.chat("tok", ChatRequest("grok-3", "MODEL_MODE_FAST", "via proxy"))]
    assert events[-1] == next(e for e in events if isinstance(e, ModelResponse))
    assert (await client.rate_limits("tok", "grok-3")).total == 80
    assert {r.headers["Host"] for r in fake_grok.requests} == {"grok.test"}


async def test_socks_base_proxy_for_http_and_websocket(client: GrokClient, fake_grok: FakeGrok,
                                                       settings: Settings, socks: Socks5Relay) -> None:
    origin = f"http://grok.test:{fake_grok.port}"
    set_grok(settings, base_url=origin, base_proxy_url=socks.url)
    await client.rate_limits("tok", "grok-3")
    assert [e async for e in client.imagine("tok", "through socks", count=1)]
    assert socks.targets and set(socks.targets) == {("grok.test", fake_grok.port)}


async def test_asset_proxy_and_its_fallback(client: GrokClient, fake_grok: FakeGrok, settings: Settings,
                                            socks: Socks5Relay, out: Path) -> None:
    uploaded = await client.upload_file("tok", "a.png", "image/png", b"png bytes")
    set_grok(settings, assets_url=f"http://assets.test:{fake_grok.port}/assets", asset_proxy_url=socks.url)
    await client.download_asset("tok", uploaded.file_uri, out / "1.png", max_bytes=99, kind="image")
    assert socks.targets == [("assets.test", fake_grok.port)]
    set_grok(settings, assets_url="http://assets.test/assets", asset_proxy_url="",
             base_url="http://grok.test", base_proxy_url=fake_grok.base_url)
    saved = await client.download_asset("tok", uploaded.file_uri, out / "2.png", max_bytes=99, kind="image")
    assert saved.path.read_bytes() == b"png bytes"
    assert fake_grok.requests_to("asset")[-1].headers["Host"] == "assets.test"
