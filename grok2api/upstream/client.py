"""``GrokClient``: the one way plugins and the pool speak to Grok's web app.

Settings are read when each call starts (sections are swapped at run time). The client
does not retry: every failure is one classified :class:`UpstreamError`, and the pool
decides what it means for the account.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import orjson

from grok2api.config.settings import Settings
from grok2api.ids import random_uuid
from grok2api.logs.logger import logger
from grok2api.upstream.classify import excerpt, from_stream_error
from grok2api.upstream.dialect import ChatRequest, Dialect, RestCall
from grok2api.upstream.download import save_body
from grok2api.upstream.errors import Failure, UpstreamError
from grok2api.upstream.events import (
    Event,
    ImagineEvent,
    ImagineImage,
    ImagineSlotDone,
    InStreamError,
    ModelResponse,
    StreamEnd,
    TextDelta,
)
from grok2api.upstream.headers import api_headers, asset_headers, statsig_id
from grok2api.upstream.results import Asset, DownloadedAsset, RateLimits, UploadedFile
from grok2api.upstream.stream import LineDecoder, read_events
from grok2api.upstream.transport import Transport, UpstreamResponse

JSON_LIMIT = 8 * 1024 * 1024
#: hosts serving public imagine pictures: fetched without the account's cookies
PUBLIC_IMAGE_HOSTS = frozenset({"imagine-public.x.ai", "imgen.x.ai"})

T = TypeVar("T")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


class GrokClient:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._transport = Transport(settings)
        self._dialect = Dialect()

    async def close(self) -> None:
        await self._transport.close()

    def asset_url(self, path: str) -> str:
        """An asset path from a stream (relative, with or without ``/``) as a URL on
        ``grok.assets_url``; absolute URLs are returned as they are."""
        if path.startswith(("http://", "https://")):
            return path
        return f"{self._settings.grok.assets_url}/{path.lstrip('/')}"

    # -- plumbing ---------------------------------------------------------------------

    def _rest(self, token: str, call: RestCall, what: str) -> AbstractAsyncContextManager[UpstreamResponse]:
        grok = self._settings.grok
        headers = api_headers(grok, token, referer=call.referer, json_body=call.body is not None,
                              statsig=statsig_id(grok, self._dialect.statsig_prefix))
        return self._transport.request(call.method, grok.base_url + call.path, headers=headers,
                                       proxy=grok.base_proxy_url, what=what, body=call.body,
                                       params=call.params)

    async def _json(self, token: str, call: RestCall, what: str, parse: Callable[[Any], T]) -> T:
        async with self._rest(token, call, what) as response:
            body = await response.read(JSON_LIMIT)
            try:
                data = orjson.loads(body) if body.strip() else {}
            except orjson.JSONDecodeError:
                raise UpstreamError(Failure.PROTOCOL, f"{what}: answer is not JSON",
                                    status=response.status, body_excerpt=excerpt(body)) from None
            return parse(data)

    # -- operations -----------------------------------------------------------------

    async def chat(self, token: str, request: ChatRequest) -> AsyncIterator[Event]:
        """Start a conversation and yield its events.

        A refused request raises before the first event. An :class:`InStreamError`, or a
        :class:`ModelResponse` carrying stream errors, is yielded and then raised as a
        classified :class:`UpstreamError`. A stream that ends with neither a
        ``ModelResponse`` nor answer text raises ``Failure.PROTOCOL``, and so does one cut
        off after answer text but before Grok said it was done (a ``StreamEnd`` or the
        ``ModelResponse``): the answer is incomplete. Closing the generator aborts the
        upstream request.
        """
        grok = self._settings.grok
        temporary = grok.temporary if request.temporary is None else request.temporary
        decoder = LineDecoder()
        answered = finished = False
        async with self._rest(token, self._dialect.chat_call(request, temporary=temporary), "chat") as response:
            async for events in read_events(response.chunks(), self._dialect.frame_reader().read, decoder):
                for event in events:
                    yield event
                    if isinstance(event, TextDelta):
                        answered = answered or (not event.thinking and event.tag in ("", "final"))
                    elif isinstance(event, ModelResponse):
                        answered = finished = True
                        if event.stream_errors:
                            raise from_stream_error(None, "; ".join(event.stream_errors), "chat")
                    elif isinstance(event, StreamEnd):
                        finished = True
                    elif isinstance(event, InStreamError):
                        raise from_stream_error(event.code, event.message, "chat")
            if decoder.skipped:
                logger.info("chat stream: skipped {} unparseable line(s)", decoder.skipped)
            if not answered:
                raise UpstreamError(Failure.PROTOCOL, "chat: stream ended without an answer")
            if not finished:
                raise UpstreamError(Failure.PROTOCOL, "chat: stream cut off before Grok finished its answer")

    async def upload_file(self, token: str, filename: str, mime: str, data: bytes) -> UploadedFile:
        call = self._dialect.upload_call(filename, mime, data)
        return await self._json(token, call, "upload_file", self._dialect.uploaded_file)

    async def rate_limits(self, token: str, model_name: str, request_kind: str = "DEFAULT") -> RateLimits:
        call = self._dialect.rate_limits_call(model_name, request_kind)
        return await self._json(token, call, "rate_limits", self._dialect.rate_limits)

    async def list_assets(self, token: str) -> list[Asset]:
        """Every page of the account's files; stops when a page token repeats."""
        assets: list[Asset] = []
        seen: set[str] = set()
        page_token = ""
        while True:
            call = self._dialect.assets_call(page_token)
            page, page_token = await self._json(token, call, "list_assets", self._dialect.assets_page)
            assets += page
            if not page_token or page_token in seen:
                return assets
            seen.add(page_token)

    async def delete_asset(self, token: str, asset_id: str) -> None:
        await self._json(token, self._dialect.delete_asset_call(asset_id), "delete_asset", lambda _: None)

    async def download_asset(self, token: str, path_or_url: str, dest: Path, *, max_bytes: int,
                             kind: Literal["image", "video"]) -> DownloadedAsset:
        """Stream an asset into ``dest`` (temp file, then rename). The account's cookies
        go only to the asset and base origins; public imagine hosts get none; any other
        host is refused."""
        grok = self._settings.grok
        url = self.asset_url(path_or_url)
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) in (_origin(grok.assets_url), _origin(grok.base_url)):
            cookie_token: str | None = token
        elif parts.scheme == "https" and parts.hostname in PUBLIC_IMAGE_HOSTS:
            cookie_token = None
        else:
            raise UpstreamError(Failure.PROTOCOL, f"download_asset: {parts.netloc!r} is not an asset host")
        async with self._transport.request("GET", url, headers=asset_headers(grok, cookie_token),
                                           proxy=grok.asset_proxy_url or grok.base_proxy_url,
                                           what="download_asset") as response:
            return await save_body(response, dest, max_bytes=max_bytes, kind=kind, what="download_asset")

    async def create_media_post(self, token: str, *, media_type: str, prompt: str | None = None,
                                media_url: str | None = None) -> str:
        """``media_type``: ``video``/``image`` or the upstream ``MEDIA_POST_TYPE_*`` name."""
        call = self._dialect.media_post_call(media_type, prompt, media_url)
        return await self._json(token, call, "create_media_post", self._dialect.media_post_id)

    async def upscale_video(self, token: str, video_id: str) -> str:
        call = self._dialect.upscale_call(video_id)
        return await self._json(token, call, "upscale_video", self._dialect.upscaled_url)

    async def imagine(self, token: str, prompt: str, *, aspect_ratio: str = "2:3", count: int = 4,
                      enable_nsfw: bool = True) -> AsyncIterator[ImagineEvent]:
        """Generate pictures over the imagine WebSocket, yielding slot starts, previews,
        finals and slot completions as they arrive.

        Ends once ``count`` slots are finished (completed with a final picture, or
        moderated) or when the server closes. An error frame raises a classified
        :class:`UpstreamError`; so does a socket that closes before any picture.
        """
        grok = self._settings.grok
        url = "ws" + grok.base_url[len("http"):] + self._dialect.imagine_path
        headers = api_headers(grok, token, referer="/imagine", json_body=False,
                              statsig=statsig_id(grok, self._dialect.statsig_prefix))
        request_id = random_uuid()
        finals: set[int] = set()
        done: dict[int, bool] = {}
        async with self._transport.websocket(url, headers=headers, proxy=grok.base_proxy_url,
                                             what="imagine") as socket:
            for message in self._dialect.imagine_messages(
                    prompt, aspect_ratio=aspect_ratio, enable_nsfw=enable_nsfw,
                    request_id=request_id, timestamp_ms=int(time.time() * 1000)):
                await socket.send_json(message)
            async for frame in socket.frames():
                for event in self._dialect.imagine_events(frame, request_id):
                    if isinstance(event, InStreamError):
                        raise from_stream_error(event.code, event.message, "imagine")
                    yield event
                    if isinstance(event, ImagineImage) and event.final:
                        finals.add(event.order)
                    elif isinstance(event, ImagineSlotDone):
                        done[event.order] = event.moderated
                    if sum(1 for order, moderated in done.items() if moderated or order in finals) >= count:
                        return
            if not finals and not done:
                raise UpstreamError(Failure.PROTOCOL, "imagine: socket closed before any picture")
