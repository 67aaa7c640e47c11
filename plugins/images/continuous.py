"""``WS /api/v1/admin/imagine/ws?api_key=<key>``: pictures one batch after another until stopped.

The console's continuous mode. Commands (JSON text): ``start`` (``prompt``,
``aspect_ratio``; replaces a running loop), ``stop``, ``ping``. Events: ``status``
(running / stopped), ``image`` (``b64_json``, ``sequence``, ``created_at`` in ms,
``elapsed_ms``, ``aspect_ratio``, ``run_id``) and ``error`` (``message``, ``code``).

Unlike the original, the key's limits hold here as on ``/v1/images/generations``. The
kernel checks the key before the socket opens (a refused one is closed with 1008).
Each batch is one request of the key: it is looked up again (disabled, deleted or
expired ends the loop), passes its model allow-list, requests per minute and
concurrency (a refusal of the last two is ``rate_limit_exceeded`` and the loop waits),
and reserves its pictures from the key's daily image limit, as many as are left up to
a batch; what the batch did not deliver is given back. A key with nothing left gets
``rate_limit_exceeded`` and the loop stops; a pool with no free account gets the same
code and the loop waits and tries again.
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
    Reservation,
    UpstreamError,
    api_key_route,
    bearer,
    from_domain,
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
    session = Session(request.app, request[IDENTITY], socket, presented_key(request))
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


def presented_key(request: web.Request) -> str | None:
    """The key the kernel authenticated the socket with, to look it up again later."""
    return bearer(request) or request.headers.get("x-api-key", "").strip() or \
        request.query.get("api_key", "").strip() or None


class Session:
    """One socket: at most one loop running, and every event sent whole."""

    def __init__(self, app: web.Application, identity: Identity, socket: web.WebSocketResponse,
                 presented: str | None) -> None:
        self.app = app
        self.identity = identity
        self.socket = socket
        self.presented = presented
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
            wait = await self._next_batch()
            if wait is None:
                return
            if wait:
                await asyncio.sleep(wait)

    async def _next_batch(self) -> float | None:
        """One batch inside the key's limits; how long to wait before the next one, or
        None when the loop must end (the key's quota is used up, or the key no longer serves)."""
        self.delivered = 0
        try:
            if not await self._key_serves():
                return None
            async with self.keys.admit(self.session.identity, GENERATE.id):  # allow-list, rpm, concurrency
                reservation = await self._reserve(BATCH)
                if reservation is None:
                    await self.send(type="error", code="rate_limit_exceeded",
                                    message="This API key's daily image limit is used up")
                    return None
                try:
                    await self._batch(reservation.usage["image"])
                finally:
                    await reservation.settle({"image": self.delivered})
        except NoAccountAvailable as exc:
            await self.send(type="error", code="rate_limit_exceeded", message=exc.message)
            return min(exc.retry_after or WAIT_FOR_ACCOUNT, MAX_WAIT)
        except UpstreamError as exc:
            code = "content_policy_violation" if exc.failure is Failure.MODERATED else "internal_error"
            await self.send(type="error", code=code, message=f"Grok upstream failed: {exc.message}")
            return RETRY_AFTER_FAILURE
        except Exception as exc:
            refused = from_domain(exc)  # the key's limits: rpm and concurrency wait, the rest ends the loop
            if refused is None:
                raise
            if refused.status == 429:
                await self.send(type="error", code="rate_limit_exceeded", message=refused.message)
                return min(float(refused.headers.get("Retry-After", WAIT_FOR_ACCOUNT)), MAX_WAIT)
            await self.send(type="error", code=refused.code or "internal_error", message=refused.message)
            return None
        if not self.delivered:
            await self.send(type="error", code="empty_image", message="The batch made no picture")
            return RETRY_AFTER_FAILURE
        return 0

    async def _key_serves(self) -> bool:
        """A managed key is looked up again before each batch: disabling, deleting or the
        expiry of a key ends its loops (:class:`KeyExpired` is raised to the caller)."""
        identity, presented = self.session.identity, self.session.presented
        if identity.kind != "managed" or presented is None:
            return True
        if await self.keys.authenticate(presented) is not None:
            return True
        await self.send(type="error", code="invalid_api_key", message="This API key was disabled or deleted")
        return False

    async def _reserve(self, wanted: int) -> Reservation | None:
        """Up to ``wanted`` pictures of the key's daily limit, as many as are left (so the
        last few of a limit are made too); None when none is."""
        for count in range(wanted, 0, -1):
            try:
                return await self.keys.reserve(self.session.identity, {"image": count})
            except QuotaExceeded:
                continue
        return None

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
