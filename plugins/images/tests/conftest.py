"""``start_gateway``: the real app (SQLite storage, the images plugin, pool, Grok client) on
a loopback port in front of the ``fake_grok`` fixture, serving one image method."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from grok2api.api import KEYS, POOL, Settings, create_app
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.fake_grok.media import jpeg, png
from grok2api.testing.pytest_plugin import load_plugin
from grok2api_plugins.chat.tests.support import FAST_TIMEOUTS, free_socket
from grok2api_plugins.images import hooks

from .support import API_KEY, ImageBodies, Live

StartGateway = Callable[..., Awaitable[Live]]


@pytest_asyncio.fixture
async def start_gateway(fake_grok: FakeGrok, make_settings: Callable[..., Settings]) -> AsyncIterator[StartGateway]:
    """``await start_gateway("legacy", basic=[...], limits={...}, grok={...}, app={...})``;
    ``plugins=("chat",)`` loads more plugins than storage and images.

    Clients authenticate with :data:`API_KEY`, a managed key with the daily ``limits``
    given (unlimited by default). Each answer an SDK client of :class:`Live` received is
    checked against OpenAI's schemas; a mismatch fails the test at teardown.
    """
    started: list[tuple[web.AppRunner, Live]] = []

    async def start(method: str = "legacy", *, basic: Sequence[str] = ("basic-1",),
                    limits: dict[str, int] | None = None, plugins: Sequence[str] = (),
                    **sections: dict[str, Any]) -> Live:
        sock = free_socket()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        grok = {**fake_grok.grok_settings(), **FAST_TIMEOUTS, "image_generation_method": method,
                **sections.pop("grok", {})}
        settings = make_settings(grok=grok, app={"app_url": url, **sections.pop("app", {})}, **sections)
        for token in basic:
            fake_grok.add_account(token)
        app = create_app(settings, [load_plugin("storage_local"), hooks, *map(load_plugin, plugins)],
                         load_entrypoints=False)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        await app[KEYS].create(key=API_KEY, name="image-tests", limits=limits)
        await app[POOL].add(list(basic))
        live = Live(url, app, fake_grok, list(basic), ImageBodies())
        started.append((runner, live))
        return live

    yield start
    for runner, live in started:
        await runner.cleanup()
        assert not live.bodies.failures, "\n\n".join(live.bodies.failures)


@pytest.fixture
def fake_jpeg() -> bytes:
    return jpeg("a source picture", 2048)


@pytest.fixture
def fake_png() -> bytes:
    return png("a source picture")
