"""``start_gateway``: the real app (SQLite storage, chat plugin, pool, Grok client) on a
loopback TCP port, in front of the ``fake_grok`` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest_asyncio
from aiohttp import web

from grok2api.api import KEYS, POOL, POOL_SUPER, Settings, create_app
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.pytest_plugin import load_plugin
from grok2api_plugins.chat.settings import ChatSettings

from .support import API_KEY, FAST_TIMEOUTS, Bodies, Live, free_socket

StartGateway = Callable[..., Awaitable[Live]]


@pytest_asyncio.fixture
async def start_gateway(fake_grok: FakeGrok, make_settings: Callable[..., Settings]) -> AsyncIterator[StartGateway]:
    """``await start_gateway(basic=[...], super_=[...], limits={...}, grok={...}, chat={...}, token={...})``;
    ``plugins=("messages",)`` loads more plugins than storage and chat.

    Clients authenticate with :data:`API_KEY`, a managed key with the daily ``limits``
    given (``{"chat_limit": 2}``; unlimited by default).

    The gateway runs as ``grok2api serve`` runs it (aiohttp does not cancel handlers of
    departed clients). Each body an SDK client of :class:`Live` received is checked
    against OpenAI's schemas; a mismatch fails the test at teardown.
    """
    started: list[tuple[web.AppRunner, Live]] = []

    async def start(*, basic: Sequence[str] = ("basic-1",), super_: Sequence[str] = (),
                    limits: dict[str, int] | None = None, chat: dict[str, Any] | None = None,
                    plugins: Sequence[str] = (), **sections: dict[str, Any]) -> Live:
        sock = free_socket()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        grok = {**fake_grok.grok_settings(), **FAST_TIMEOUTS, **sections.pop("grok", {})}
        app_section = {"app_url": url, **sections.pop("app", {})}
        settings = make_settings(grok=grok, app=app_section, **sections)
        for token in basic:
            fake_grok.add_account(token)
        for token in super_:
            fake_grok.add_account(token, tier="super")
        app = create_app(settings, [load_plugin(name) for name in ("storage_local", "chat", *plugins)],
                         load_entrypoints=False)
        current = settings.chat.model_dump()  # type: ignore[attr-defined]
        settings.chat = ChatSettings.model_validate({**current, **(chat or {})})  # type: ignore[attr-defined]
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.SockSite(runner, sock).start()
        await app[KEYS].create(key=API_KEY, name="chat-tests", limits=limits)
        await app[POOL].add(list(basic))
        if super_:
            await app[POOL].add(list(super_), pool=POOL_SUPER)
        live = Live(url, app, fake_grok, [*basic, *super_], Bodies())
        started.append((runner, live))
        return live

    yield start
    for runner, live in started:
        await runner.cleanup()
        assert not live.bodies.failures, "\n\n".join(live.bodies.failures)
