"""``POST /v1/images/generations`` and ``/v1/images/edits``, and ``GET /v1/images/method``.

Order of work: validate the whole request (files included), reserve ``n`` pictures of
the API key's daily image limit, then let the configured method make them. The key
is charged what was delivered: the reservation is trimmed afterwards, also when the
request failed or the client left. Until the first stream event a failure is an
honest HTTP status; after it, an ``error`` event ends the stream. A client that goes
away cancels the upstream calls, which returns their accounts to the pool.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from grok2api.api import (
    KEYS,
    MEDIA,
    REGISTRIES,
    SETTINGS,
    ApiError,
    ImageEvent,
    ImagePartial,
    ImageReady,
    ImageRequest,
    MediaCache,
    ModelRequest,
    NoAccountAvailable,
    Reservation,
    UpstreamError,
    from_domain,
    logger,
    random_hex,
)
from grok2api_plugins.images.render import Body, Events, b64_slices, error_event
from grok2api_plugins.images.request import Ask, parse

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
               "X-Accel-Buffering": "no"}
_EXTENSIONS = {"image/png": ".png", "image/webp": ".webp"}
WATCH_INTERVAL = 0.1


async def generations(req: ModelRequest) -> web.StreamResponse:
    return await _serve(req, edit=False)


async def edits(req: ModelRequest) -> web.StreamResponse:
    return await _serve(req, edit=True)


async def image_method(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    method = request.app[REGISTRIES].image_methods.get(settings.grok.image_generation_method)
    return web.json_response({"image_generation_method": method.name})


def api_error(exc: UpstreamError | NoAccountAvailable) -> ApiError:
    """The kernel's statuses for upstream trouble and the pool's refusals."""
    mapped = from_domain(exc)
    assert mapped is not None  # both are domain errors
    return mapped


async def _serve(req: ModelRequest, *, edit: bool) -> web.StreamResponse:
    app, settings = req.app, req.app[SETTINGS]
    ask = parse(req.body, default_format=settings.app.image_format, edit=edit)
    method = app[REGISTRIES].image_methods.get(settings.grok.image_generation_method)
    job = ImageRequest(req.model, ask.prompt, ask.n, ask.aspect_ratio, ask.stream, ask.concurrency, ask.images)
    answer = Answer(req, ask, edit, await app[KEYS].reserve(req.identity, {"image": ask.n}))
    try:
        async with CancelOnDisconnect(req.request):
            events = method.generate(app, job)
            try:
                return await (answer.stream(events) if ask.stream else answer.collect(events))
            finally:
                aclose = getattr(events, "aclose", None)  # a method's own iterator may have none
                if aclose is not None:
                    await aclose()
    finally:
        await answer.settle()


class CancelOnDisconnect:
    """Cancels the handler when its client leaves, even while nothing is being written
    (aiohttp runs handlers of departed clients to the end)."""

    def __init__(self, request: web.Request) -> None:
        self.request = request
        self._watch: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._watch = asyncio.create_task(self._poll(handler))

    async def _poll(self, handler: asyncio.Task[Any]) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            transport = self.request.transport
            if transport is None or transport.is_closing():
                handler.cancel()
                return

    async def __aexit__(self, *exc: object) -> None:
        assert self._watch is not None
        self._watch.cancel()


def store(media: MediaCache, pictures: list[ImageReady]) -> tuple[list[Path], bool]:
    """Each picture's file in the media cache, written unless already there; and whether
    any was written."""
    paths, wrote = [], False
    for picture in pictures:
        # /v1/files serves a name to anyone who knows it: drawn from the OS, never from the
        # process's random generator, whose state the request ids it prints would give away
        name = picture.name or f"image-{secrets.token_hex(16)}{_EXTENSIONS.get(picture.mime, '.jpg')}"
        path = media.resolve("image", name)
        if path is None:
            path = write_image(media, name, picture.data)
            wrote = True
        paths.append(path)
    return paths, wrote


def write_image(media: MediaCache, name: str, data: bytes) -> Path:
    """``data`` as the cached picture ``name``: a temp file, then a rename, so a reader
    never sees half a file."""
    directory = media.directory("image")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name.replace("/", "-")
    temp = directory / f".{path.name}.{random_hex(4)}"
    temp.write_bytes(data)
    os.replace(temp, path)
    return path


class Answer:
    """One answer: the pictures delivered so far and how they leave."""

    def __init__(self, req: ModelRequest, ask: Ask, edit: bool, charge: Reservation) -> None:
        self.req = req
        self.ask = ask
        self.edit = edit
        self.media = req.app[MEDIA]
        self.delivered = 0
        self.charge = charge

    async def settle(self) -> None:
        """Charge the pictures delivered and give back the rest of the reservation: before
        the answer's last byte leaves (a client may look at its usage right after), or when
        the request ends (the first call counts)."""
        await self.charge.settle({"image": self.delivered})

    async def _links(self, pictures: list[ImageReady]) -> list[str]:
        """Links to the pictures in the media cache (one trip to a thread for all of them)."""
        paths, wrote = await asyncio.to_thread(store, self.media, pictures)
        if wrote:
            self.media.schedule_trim(sum(len(picture.data) for picture in pictures))
        return [self.media.public_url("image", path) for path in paths]

    def _forget_download(self, picture: ImageReady) -> None:
        """``cache.keep_base64_cache = false``: a downloaded picture sent as base64 leaves the cache."""
        if picture.name and not self.media.settings.cache.keep_base64_cache:
            path = self.media.resolve("image", picture.name)
            if path is not None:
                path.unlink(missing_ok=True)

    async def collect(self, events: Any) -> web.StreamResponse:
        pictures: list[ImageReady] = []
        try:
            async for event in events:
                if isinstance(event, ImageReady):
                    pictures.append(event)
        except (UpstreamError, NoAccountAvailable) as exc:
            raise api_error(exc) from None
        pictures.sort(key=lambda p: p.index)
        if self.ask.response_format == "url":
            data = [{"url": link} for link in await self._links(pictures)]
            self.delivered = len(pictures)
            return web.Response(body=orjson.dumps({"created": int(time.time()), "data": data}),
                                content_type="application/json")
        return await self._write_base64(pictures)

    async def _write_base64(self, pictures: list[ImageReady]) -> web.StreamResponse:
        body = Body(self.ask.response_format)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = body.length([len(p.data) for p in pictures])
        await response.prepare(self.req.request)
        await response.write(body.head())
        for position, picture in enumerate(pictures):
            await response.write(body.item_head(position == 0))
            for piece in b64_slices(picture.data):
                await response.write(piece)
            await response.write(body.ITEM_TAIL)
            self._forget_download(picture)
        self.delivered = len(pictures)
        await self.settle()
        await response.write_eof(body.TAIL)
        return response

    async def stream(self, events: Any) -> web.StreamResponse:
        shapes = Events(self.edit, self.ask.aspect_ratio)
        response: web.StreamResponse | None = None
        partials: dict[int, int] = {}
        try:
            async for event in events:
                chunk = await self._event(shapes, partials, event)
                if response is None:
                    response = web.StreamResponse(headers=SSE_HEADERS)
                    await response.prepare(self.req.request)
                await response.write(chunk)
                if isinstance(event, ImageReady):
                    self.delivered += 1
        except (UpstreamError, NoAccountAvailable) as exc:
            error = api_error(exc)
            if response is None:
                raise error from None
            logger.warning("image stream failed after it began: {}", error.message)
            await self.settle()
            await response.write_eof(error_event(error.body()))
            return response
        except ConnectionResetError:
            logger.info("image stream: the client left")
            assert response is not None
            return response
        assert response is not None  # the method raises when it made nothing
        await self.settle()
        await response.write_eof()
        return response

    async def _event(self, shapes: Events, partials: dict[int, int], event: ImageEvent) -> bytes:
        if isinstance(event, ImagePartial):
            count = partials.get(event.index, 0)
            partials[event.index] = count + 1
            return shapes.partial(event.index, count, event.percent, event.preview)
        if self.ask.response_format == "url":
            (link,) = await self._links([event])
            return shapes.completed(event.index, event.mime, None, link)
        self._forget_download(event)
        return shapes.completed(event.index, event.mime, event.data, None)
