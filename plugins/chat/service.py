"""The chat plugin's per-app state, created at start-up and closed at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from grok2api.api import SETTINGS, Settings
from grok2api_plugins.chat.fetch import AttachmentLoader, Blob
from grok2api_plugins.chat.own_media import load_own
from grok2api_plugins.chat.request import Attachment


class DisconnectWatch:
    """Cancels a handler whose client went away, even while the upstream is silent.

    aiohttp does not cancel handlers when a client disconnects (``handler_cancellation``
    is off by default), and a handler only notices when it next writes. One timer per
    app checks every watched request's connection, so a silent upstream stream is
    still cancelled within :attr:`INTERVAL` seconds and its account freed.
    """

    INTERVAL = 0.1

    def __init__(self) -> None:
        self._watched: dict[asyncio.Task[object], web.Request] = {}
        self._timer: asyncio.Task[None] | None = None

    def watching(self, request: web.Request) -> Watching:
        """``with`` this, the current task is cancelled if ``request``'s client leaves."""
        return Watching(self, request)

    def watch(self, task: asyncio.Task[object], request: web.Request) -> None:
        self._watched[task] = request
        if self._timer is None or self._timer.done():
            self._timer = asyncio.create_task(self._run())

    def unwatch(self, task: asyncio.Task[object]) -> None:
        self._watched.pop(task, None)

    async def _run(self) -> None:
        while self._watched:
            await asyncio.sleep(self.INTERVAL)
            for task, request in list(self._watched.items()):
                transport = request.transport
                if transport is None or transport.is_closing():
                    del self._watched[task]
                    task.cancel()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer


class Watching:
    """A request watched for the span of a ``with`` block (a class, not
    ``@contextmanager``: every chat request enters one)."""

    __slots__ = ("_watch", "_request", "_task")

    def __init__(self, watch: DisconnectWatch, request: web.Request) -> None:
        self._watch = watch
        self._request = request

    def __enter__(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._watch.watch(task, self._request)

    def __exit__(self, *exc: object) -> None:
        self._watch.unwatch(self._task)


class ChatService:
    def __init__(self, settings: Settings, own: Callable[[Attachment], Awaitable[Blob | None]] | None = None) -> None:
        self.settings = settings
        self.loader = AttachmentLoader(lambda: settings.chat, own)  # type: ignore[attr-defined]
        self.disconnects = DisconnectWatch()

    async def close(self) -> None:
        await self.disconnects.close()
        await self.loader.close()


CHAT = web.AppKey("chat", ChatService)


async def chat_context(app: web.Application) -> AsyncIterator[None]:
    """Start-up: create :class:`ChatService` (its loader reads links into this gateway's media
    cache from the cache); shutdown: close it."""
    app[CHAT] = service = ChatService(app[SETTINGS], functools.partial(load_own, app))
    try:
        yield
    finally:
        await service.close()
