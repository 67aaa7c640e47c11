"""``start_gateway``: the real app (SQLite storage unless told otherwise, the chat and video
plugins, pool, Grok client) on a loopback port in front of the ``fake_grok`` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest_asyncio
from aiohttp import web

from grok2api.api import KEYS, POOL, Settings, create_app
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.pytest_plugin import load_plugin
from grok2api_plugins.chat import hooks as chat_hooks
from grok2api_plugins.chat.settings import ChatSettings
from grok2api_plugins.chat.tests.support import FAST_TIMEOUTS, free_socket
from grok2api_plugins.video import hooks
from grok2api_plugins.video.settings import VideoSettings

from .support import API_KEY, OTHER_KEY, Live, VideoBodies

StartGateway = Callable[..., Awaitable[Live]]
StopGateway = Callable[[Live], Awaitable[None]]


@pytest_asyncio.fixture
async def gateways(fake_grok: FakeGrok, make_settings: Callable[..., Settings]
                   ) -> AsyncIterator[tuple[StartGateway, StopGateway]]:
    """``start(basic=[...], limits={...}, video={...}, chat={...}, settings=..., keys=True)`` and ``stop(live)``.

    Clients authenticate with :data:`API_KEY` (a managed key with the daily ``limits``
    given) or :data:`OTHER_KEY` (a second key, unlimited). Every SDK answer is checked
    against OpenAI's schemas; a mismatch fails the test at teardown.
    """
    started: dict[int, tuple[web.AppRunner, Live]] = {}

    async def start(*, basic: Sequence[str] = ("basic-1",), limits: dict[str, int] | None = None,
                    video: dict[str, Any] | None = None, chat: dict[str, Any] | None = None,
                    settings: Settings | None = None, keys: bool = True, **sections: dict[str, Any]) -> Live:
        sock = free_socket()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        grok = {**fake_grok.grok_settings(), **FAST_TIMEOUTS, **sections.pop("grok", {})}
        if settings is None:
            settings = make_settings(grok=grok, app={"app_url": url, **sections.pop("app", {})}, **sections)
        else:
            settings.grok = settings.grok.model_validate({**settings.grok.model_dump(), **grok})
            settings.app = settings.app.model_validate({**settings.app.model_dump(), "app_url": url})
        for token in basic:
            fake_grok.add_account(token)
        storage = "storage_local" if settings.server.storage_type in ("local", "sqlite") else \
            f"storage_{settings.server.storage_type}"
        app = create_app(settings, [load_plugin(storage), chat_hooks, hooks], load_entrypoints=False)
        settings.chat = ChatSettings.model_validate(  # type: ignore[attr-defined]
            {**settings.chat.model_dump(), **(chat or {})})  # type: ignore[attr-defined]
        settings.video = VideoSettings.model_validate(  # type: ignore[attr-defined]
            {**settings.video.model_dump(), "job_poll_sec": 0.05, **(video or {})})  # type: ignore[attr-defined]
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        if keys:
            await app[KEYS].create(key=API_KEY, name="video-tests", limits=limits)
            await app[KEYS].create(key=OTHER_KEY, name="other")
        await app[POOL].add(list(basic))
        live = Live(url, app, fake_grok, VideoBodies())
        started[id(live)] = (runner, live)
        return live

    async def stop(live: Live) -> None:
        runner, _ = started.pop(id(live))
        await runner.cleanup()
        assert not live.bodies.failures, "\n\n".join(live.bodies.failures)

    yield start, stop
    for runner, live in started.values():
        await runner.cleanup()
        assert not live.bodies.failures, "\n\n".join(live.bodies.failures)


@pytest_asyncio.fixture
async def start_gateway(gateways: tuple[StartGateway, StopGateway]) -> StartGateway:
    return gateways[0]
