"""The ``imagine_ws_experimental`` method: Grok's imagine WebSocket (protocol §5.1).

One socket round asks for up to four pictures; ⌈n/4⌉ rounds run, at most
``concurrency`` at once, each on an account the pool leases (a refused handshake or
an error frame before the first slot moves to another account). Previews become
:class:`ImagePartial` with their bytes; a picture is ready once both its final image
and its slot's completion arrived (in either order) and the slot was not moderated.
The socket cannot edit, so edits go through chat with the imagine edit model.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
from collections.abc import AsyncIterator

from aiohttp import web

from grok2api.api import (
    POOL,
    UPSTREAM,
    ChatRequest,
    ImageEvent,
    ImagePartial,
    ImageReady,
    ImageRequest,
    ImagineImage,
    ImagineSlotDone,
    cache_name,
    logger,
)
from grok2api_plugins.images.calls import Call, Slots, run_calls
from grok2api_plugins.images.legacy import ChatPictures

PER_ROUND = 4


def imagine_edit_payload(request: ImageRequest, references: list[str]) -> ChatRequest:
    """The edit body of the imagine model (§4.3, before 2026-08-15): the sources as asset URLs."""
    return ChatRequest(request.model.upstream_model, "", request.prompt, tool_overrides={"imageGen": True},
                       model_map={"imageEditModel": "imagine", "imageEditModelConfig": {"imageReferences": references}})


def _decode(image: ImagineImage) -> bytes | None:
    try:
        return base64.b64decode(image.blob_base64) if image.blob_base64 else None
    except (binascii.Error, ValueError):
        logger.warning("images: picture {} arrived with a broken blob", image.image_id)
        return None


class ImagineMethod:
    """``grok.image_generation_method = "imagine_ws_experimental"`` (or one of its aliases)."""

    name = "imagine_ws_experimental"

    def generate(self, app: web.Application, request: ImageRequest) -> AsyncIterator[ImageEvent]:
        if request.images:
            client = app[UPSTREAM]
            return ChatPictures(app, request, lambda r, sources: imagine_edit_payload(
                r, [client.asset_url(uri) for _, uri in sources])).events()
        slots = Slots(request.n)
        counts = [min(PER_ROUND, request.n - PER_ROUND * k) for k in range(math.ceil(request.n / PER_ROUND))]
        calls: list[Call] = [functools.partial(self._round, app, request, slots, k, c) for k, c in enumerate(counts)]
        return run_calls(calls, request.concurrency, slots)

    @staticmethod
    async def _round(app: web.Application, request: ImageRequest, slots: Slots, k: int,
                     count: int) -> AsyncIterator[ImageEvent]:
        client = app[UPSTREAM]
        stream = await app[POOL].stream(request.model, lambda lease: client.imagine(
            lease.token, request.prompt, aspect_ratio=request.aspect_ratio, count=count))
        finals: dict[int, ImagineImage] = {}
        done: dict[int, bool] = {}  # order → moderated
        try:
            async for event in stream:
                if isinstance(event, ImagineImage) and event.final:
                    finals[event.order] = event
                elif isinstance(event, ImagineImage):
                    index = slots.index((k, event.order))
                    if index is not None:
                        preview = _decode(event) if request.stream else None  # only a stream shows it
                        yield ImagePartial(index, max(0, min(99, event.percentage)), preview)
                elif isinstance(event, ImagineSlotDone):
                    done[event.order] = event.moderated
                    slots.moderated += event.moderated
                for order in [o for o in finals if o in done]:
                    ready = _ready(slots, k, finals.pop(order)) if not done[order] else None
                    if ready is not None:
                        yield ready
            # the socket closed: a final without its completion frame still counts
            for image in list(finals.values()):
                ready = _ready(slots, k, image)
                if ready is not None:
                    yield ready
        finally:
            await stream.aclose()


def _ready(slots: Slots, k: int, image: ImagineImage) -> ImageReady | None:
    index = slots.index((k, image.order))
    data = _decode(image)
    if index is None or data is None:
        return None
    return ImageReady(index, data, image.mime_type, name=cache_name(image.url) if image.url else "")
