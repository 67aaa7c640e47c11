"""The ``legacy`` method: pictures made by Grok's chat (protocol §4.3, the [T] generation).

A generation asks ``Image Generation: <prompt>`` of ``grok-3``/``MODEL_MODE_FAST``, an
edit ``Image Edit: <prompt>`` of ``imagine-image-edit`` with the sources uploaded to the
same account and attached. One call yields two pictures, so ⌈n/2⌉ calls run side by
side. Progress frames become :class:`ImagePartial` (Grok sends percentages, no preview);
a finished picture is downloaded into the media cache with the account that made it.
:class:`ChatPictures` is the part the imagine method reuses for its edits.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from grok2api.api import (
    MEDIA,
    POOL,
    UPSTREAM,
    ChatRequest,
    Event,
    ImageEvent,
    ImagePartial,
    ImageProgress,
    ImageReady,
    ImageRequest,
    Lease,
    ModelResponse,
    UpstreamError,
    cache_name,
    logger,
)
from grok2api_plugins.images.calls import Call, Slots, run_calls
from grok2api_plugins.images.request import sniff

PER_CALL = 2
#: (the request, the uploaded sources as (file id, asset path)) → the chat call to make
Payload = Callable[[ImageRequest, list[tuple[str, str]]], ChatRequest]


def legacy_payload(request: ImageRequest, sources: list[tuple[str, str]]) -> ChatRequest:
    edit = bool(request.images)
    message = f"{'Image Edit' if edit else 'Image Generation'}: {request.prompt}"
    return ChatRequest(request.model.upstream_model, request.model.upstream_mode, message,
                       file_attachments=[file_id for file_id, _ in sources], image_generation_count=PER_CALL)


class ChatPictures:
    """⌈n/2⌉ chat calls for one request, each on an account the pool leases (rotating
    before the first picture event, as chat does)."""

    def __init__(self, app: web.Application, request: ImageRequest, payload: Payload) -> None:
        self.app = app
        self.request = request
        self.payload = payload
        self.slots = Slots(request.n)

    def events(self) -> AsyncIterator[ImageEvent]:
        calls: list[Call] = [functools.partial(self._call, k) for k in range(math.ceil(self.request.n / PER_CALL))]
        return run_calls(calls, len(calls), self.slots)

    async def _attempt(self, lease: Lease) -> AsyncIterator[Event]:
        """One try on one account: upload the sources there, then chat. Only picture events
        pass, so a refusal before the first of them still moves the request to another account."""
        client, media = self.app[UPSTREAM], self.app[MEDIA]

        async def upload(index: int) -> tuple[str, str]:
            image = self.request.images[index]
            async with media.slot():
                uploaded = await client.upload_file(lease.token, image.filename, image.content_type, image.data)
            return uploaded.file_id, uploaded.file_uri

        sources = list(await asyncio.gather(*(upload(i) for i in range(len(self.request.images)))))
        async for event in client.chat(lease.token, self.payload(self.request, sources)):
            if isinstance(event, (ImageProgress, ModelResponse)):
                yield event

    async def _call(self, k: int) -> AsyncIterator[ImageEvent]:
        """One chat call's pictures: progress as it streams, each finished picture downloaded
        while the stream goes on (all of them at once), handed on as its download ends."""
        stream = await self.app[POOL].stream(self.request.model, self._attempt)
        finished: set[int] = set()
        downloads: list[asyncio.Task[ImageReady | None]] = []
        try:
            async for event in stream:
                if isinstance(event, ImageProgress):
                    found = self._progress(event, finished)
                elif isinstance(event, ModelResponse):
                    found = [(i, url) for i, url in enumerate(event.generated_image_urls) if i not in finished]
                else:
                    continue
                for i, url in found:
                    finished.add(i)
                    downloads.append(asyncio.create_task(self._download(stream.lease.token, k, i, url)))
                if isinstance(event, ImageProgress) and event.progress < 100:
                    index = self.slots.index((k, event.index))
                    if index is not None:
                        yield ImagePartial(index, event.progress)
            for download in asyncio.as_completed(downloads):
                ready = await download
                if ready is not None:
                    yield ready
        finally:
            for task in downloads:
                task.cancel()
            await stream.aclose()

    def _progress(self, event: ImageProgress, finished: set[int]) -> list[tuple[int, str]]:
        if event.progress < 100 or event.index in finished:
            return []
        if event.moderated:
            finished.add(event.index)
            self.slots.moderated += 1
            return []
        return [(event.index, event.url)] if event.url else []

    async def _download(self, token: str, k: int, i: int, url: str) -> ImageReady | None:
        index = self.slots.index((k, i))
        if index is None:
            return None
        try:
            data = await self.app[MEDIA].read(token, url, "image")
        except (UpstreamError, ValueError, OSError) as exc:
            logger.warning("images: picture {} could not be downloaded: {}", url, exc)
            return None
        return ImageReady(index, data, sniff(data) or "image/jpeg", name=cache_name(url))


class LegacyMethod:
    """``grok.image_generation_method = "legacy"``."""

    name = "legacy"

    def generate(self, app: web.Application, request: ImageRequest) -> AsyncIterator[ImageEvent]:
        return ChatPictures(app, request, legacy_payload).events()
