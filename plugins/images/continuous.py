"""``WS /api/v1/admin/imagine/ws?api_key=<key>``: pictures one batch after another until stopped.

The console's continuous mode. Commands (JSON text): ``start`` (``prompt``,
``aspect_ratio``; replaces a running loop), ``stop``, ``ping``. Events: ``status``
(running / stopped), ``image`` (``b64_json``, ``sequence``, ``created_at`` in ms,
``elapsed_ms``, ``aspect_ratio``, ``run_id``) and ``error`` (``message``, ``code``).

Unlike the original, the key's limits hold here as on ``/v1/images/generations``:
before each batch its pictures are reserved from the key's daily image limit (as many
as are left, up to a batch), and what the batch did not deliver is given back. A key
with nothing left gets ``rate_limit_exceeded`` and the loop stops; a pool with no free
account gets the same code and the loop waits and tries again. The key is checked by
the kernel before the socket opens (a refused one is closed with 1008).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from grok2api.api import (
    IDENTITY,
    KEYS,
    REGISTRIES,
    Failure,
    Identity,
    ImageReady,
    ImageRequest,
    NoAccountAvailable,
    QuotaExceeded,
    UpstreamError,
    api_key_route,
    invalid,
    logger,
    random_hex,
)
from grok2api_plugins.images.catalog import GENERATE
from grok2api_plugins.images.imagine import ImagineMethod
from grok2api_plugins.images.request import aspect_ratio

PATH = "/api/v1/admin/imagine/ws"
#: pictures asked for per batch (the original's six: two socket rounds)
BATCH = 6
#: pause after a failed or empty batch, and while the pool has no account free
RETRY_AFTER_FAILURE = 1.5
WAIT_FOR_ACCOUNT = 2.0
#: longest wait before asking the pool again (an account may be added meanwhile)
MAX_WAIT = 30.0
MAX_MESSAGE = 16 * 1024
MAX_PROMPT = 4000


class Command(Exception):
    """A command the socket cannot carry out: sent back as an ``error`` event, the socket stays open."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@api_key_route
async def imagine_socket(request: web.Request) -> web.StreamResponse:
    socket = web.WebSocketResponse(heartbeat=30, max_msg_size=MAX_MESSAGE)
    if not socket.can_prepare(request).ok:
        raise invalid("This route speaks WebSocket only: connect with ws:// or wss://", "Upgrade",
                      "websocket_required")
    await socket.prepare(request)
    session = Session(request.app, request[IDENTITY], socket)
    try:
        async for message in socket:
            if message.type is WSMsgType.TEXT:
                try:
                    await session.command(message.data)
                except Command as refused:
                    await session.send(type="error", message=str(refused), code=refused.code)
            elif message.type is WSMsgType.BINARY:
                await session.send(type="error", message="Commands are JSON text frames", code="invalid_payload")
    finally:
        await session.stop(announce=False)
    return socket


class Session:
    """One socket: at most one loop running, and every event sent whole."""

    def __init__(self, app: web.Application, identity: Identity, socket: web.WebSocketResponse) -> None:
        self.app = app
        self.identity = identity
        self.socket = socket
        self._loop: Loop | None = None
        self._task: asyncio.Task[None] | None = None
        self._sending = asyncio.Lock()

    async def send(self, **event: Any) -> None:
        if self.socket.closed:
            return
        async with self._sending:
            with contextlib.suppress(ConnectionResetError):
                await self.socket.send_str(orjson.dumps(event).decode())

    async def command(self, text: str) -> None:
        try:
            payload = orjson.loads(text)
        except orjson.JSONDecodeError:
            raise Command("invalid_payload", "A command must be a JSON object") from None
        if not isinstance(payload, dict):
            raise Command("invalid_payload", "A command must be a JSON object")
        kind = payload.get("type")
        if kind == "ping":
            await self.send(type="pong")
        elif kind == "stop":
            await self.stop(announce=True)
        elif kind == "start":
            await self.start(payload)
        else:
            raise Command("unknown_command", f"Unknown command type {str(kind)[:40]!r}: start, stop or ping")

    async def start(self, payload: dict[str, Any]) -> None:
        prompt = payload.get("prompt")
        prompt = prompt.strip() if isinstance(prompt, str) else ""
        if not prompt:
            raise Command("empty_prompt", "prompt is required and must not be blank")
        if len(prompt) > MAX_PROMPT:
            raise Command("invalid_payload", f"prompt is longer than {MAX_PROMPT} characters")
        ratio = aspect_ratio(payload.get("aspect_ratio"))
        await self.stop(announce=True)
        self._loop = loop = Loop(self, random_hex(8), prompt, ratio)
        await self.send(type="status", status="running", prompt=prompt, aspect_ratio=ratio, run_id=loop.run_id)
        self._task = asyncio.create_task(loop.run(), name=f"imagine-loop-{loop.run_id}")

    async def stop(self, *, announce: bool) -> None:
        """End the running loop (its upstream calls are cancelled, freeing their accounts).

        The loop also checks a flag, and is cancelled until it has ended: a cancellation
        that lands while the image calls are being cancelled can be absorbed there."""
        loop, task = self._loop, self._task
        self._loop = self._task = None
        if loop is None or task is None or task.done():
            return
        loop.stopped = True
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.5)
        if announce:
            await self.send(type="status", status="stopped", run_id=loop.run_id)


class Loop:
    """Batches until the key's quota runs out (or the loop is cancelled)."""

    def __init__(self, session: Session, run_id: str, prompt: str, ratio: str) -> None:
        self.session = session
        self.run_id = run_id
        self.prompt = prompt
        self.ratio = ratio
        self.sequence = 0
        self.stopped = False
        #: pictures of the current batch sent so far
        self.delivered = 0
        self.keys = session.app[KEYS]
        self.method = session.app[REGISTRIES].image_methods.get(ImagineMethod.name)

    async def send(self, **event: Any) -> None:
        """An event of this loop, unless it was stopped (a later one may be running)."""
        if not self.stopped:
            await self.session.send(**event)

    async def run(self) -> None:
        """Batches until stopped or out of quota; then (unless stopped) a ``stopped`` status."""
        try:
            await self._batches()
        except Exception:
            logger.exception("imagine loop {} failed", self.run_id)
            await self.send(type="error", message="Internal error; the loop stopped", code="internal_error")
        await self.send(type="status", status="stopped", run_id=self.run_id)

    async def _batches(self) -> None:
        while not self.stopped:
            reserved = await self._reserve(BATCH)
            if not reserved:
                await self.send(type="error", code="rate_limit_exceeded",
                                message="This API key's daily image limit is used up")
                return
            self.delivered = 0
            try:
                await self._batch(reserved)
            except NoAccountAvailable as exc:
                await self.send(type="error", code="rate_limit_exceeded", message=exc.message)
                await asyncio.sleep(min(exc.retry_after or WAIT_FOR_ACCOUNT, MAX_WAIT))
                continue
            except UpstreamError as exc:
                code = "content_policy_violation" if exc.failure is Failure.MODERATED else "internal_error"
                await self.send(type="error", code=code, message=f"Grok upstream failed: {exc.message}")
                await asyncio.sleep(RETRY_AFTER_FAILURE)
                continue
            finally:
                await self._give_back(reserved - self.delivered)
            if not self.delivered:
                await self.send(type="error", code="empty_image", message="The batch made no picture")
                await asyncio.sleep(RETRY_AFTER_FAILURE)

    async def _batch(self, count: int) -> None:
        """One batch; its pictures are sent as each is ready (counted in :attr:`delivered`)."""
        began = time.monotonic()
        events = self.method.generate(self.session.app, ImageRequest(GENERATE, self.prompt, count, self.ratio))
        try:
            async for event in events:
                if isinstance(event, ImageReady):
                    self.sequence += 1
                    self.delivered += 1
                    await self.send(
                        type="image", b64_json=base64.b64encode(event.data).decode(), sequence=self.sequence,
                        created_at=int(time.time() * 1000), elapsed_ms=int((time.monotonic() - began) * 1000),
                        aspect_ratio=self.ratio, run_id=self.run_id)
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _reserve(self, wanted: int) -> int:
        """Up to ``wanted`` pictures of the key's daily limit: all at once when they are
        left, else one by one, so the last few pictures of a limit are made too."""
        try:
            await self.keys.charge(self.session.identity, {"image": wanted})
            return wanted
        except QuotaExceeded:
            pass
        got = 0
        for _ in range(wanted - 1):
            try:
                await self.keys.charge(self.session.identity, {"image": 1})
            except QuotaExceeded:
                break
            got += 1
        return got

    async def _give_back(self, unused: int) -> None:
        if unused > 0:
            try:
                await asyncio.shield(self.keys.charge(self.session.identity, {"image": -unused}))
            except Exception:  # a storage hiccup must not end the loop
                logger.exception("imagine loop: could not give back {} reserved picture(s)", unused)
