"""Making one video: the upstream calls of protocol §4.4, §4.6–4.8, shared by chat and jobs.

An attempt on an account uploads the source picture (image-to-video), creates the media
post and starts the generation; the pool rotates accounts on a retryable failure until
the first progress frame arrives. After it, a failure is final. The video (and its
poster) are downloaded into the media cache with the account that made them. For HD,
the SD video is upscaled (§4.7); if that fails, the SD video is kept and the reason
returned, never hidden.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from grok2api.api import (
    MEDIA,
    POOL,
    UPSTREAM,
    ApiError,
    ChatRequest,
    Failure,
    UpstreamError,
    VideoProgress,
    from_domain,
    http_status,
    logger,
)
from grok2api_plugins.video.catalog import VIDEO
from grok2api_plugins.video.options import PRESETS, VideoOptions

#: the video id in an asset path: ``…/generated/<uuid>/generated_video.mp4`` (§4.7)
_VIDEO_ID = re.compile(r"/generated/([0-9a-fA-F-]{8,})/")

Progress = Callable[[int], Awaitable[None]]


class Moderated(Exception):
    """Grok refused the prompt or picture (``moderated`` at 100 %, or a moderation refusal)."""


@dataclass(frozen=True, slots=True)
class Source:
    """The picture an image-to-video request animates."""

    data: bytes
    mime: str
    filename: str


@dataclass(frozen=True, slots=True)
class Made:
    video: Path
    poster: Path | None
    hd: bool
    upscale_error: str = ""  # why an HD request got the SD video


async def _attempt(app: web.Application, token: str, prompt: str, options: VideoOptions,
                   source: Source | None) -> AsyncIterator[VideoProgress]:
    client = app[UPSTREAM]
    if source is not None:
        async with app[MEDIA].slot():
            uploaded = await client.upload_file(token, source.filename, source.mime, source.data)
        post_id = await client.create_media_post(token, media_type="image",
                                                 media_url=client.asset_url(uploaded.file_uri))
    else:
        post_id = await client.create_media_post(token, media_type="video", prompt=prompt)
    config = {"parentPostId": post_id, "aspectRatio": options.aspect_ratio, "videoLength": options.length,
              "videoResolution": "SD"}  # HD comes from the upscale, as Grok's basic accounts get it
    request = ChatRequest(VIDEO.upstream_model, "", f"{prompt} {PRESETS[options.preset]}".strip(),
                          tool_overrides={"videoGen": True}, model_map={"videoGenModelConfig": config},
                          temporary=True)
    async for event in client.chat(token, request):
        if isinstance(event, VideoProgress):
            yield event


def video_id_of(final: VideoProgress) -> str:
    found = _VIDEO_ID.search("/" + final.url.lstrip("/"))
    return found.group(1) if found else final.video_id


async def make_video(app: web.Application, prompt: str, options: VideoOptions, source: Source | None,
                     on_progress: Progress) -> Made:
    """The video in the media cache; raises :class:`UpstreamError`, :class:`Moderated` or
    the pool's ``NoAccountAvailable``."""
    upstream = await app[POOL].stream(VIDEO, lambda lease: _attempt(app, lease.token, prompt, options, source))
    final: VideoProgress | None = None
    try:
        async for event in upstream:
            if event.progress >= 100 or event.url:
                final = event
            else:
                await on_progress(event.progress)
    finally:
        await upstream.aclose()
    if final is None:
        raise UpstreamError(Failure.PROTOCOL, "the video stream ended before the video was done")
    if final.moderated or not final.url:
        if final.moderated:
            raise Moderated("Grok's moderation refused this video")
        raise UpstreamError(Failure.PROTOCOL, "the finished video has no URL")
    await on_progress(100)
    token, media = upstream.lease.token, app[MEDIA]
    url, upscale_error = final.url, ""
    if options.resolution == "HD":
        try:
            url = await app[UPSTREAM].upscale_video(token, video_id_of(final))
            path = await media.fetch(token, url, "video")
        except (UpstreamError, ValueError, OSError) as exc:
            upscale_error = str(getattr(exc, "message", exc)) or type(exc).__name__
            logger.warning("video: HD upscale failed ({}); delivering the SD video", upscale_error)
            url = final.url
    if url == final.url:
        path = await media.fetch(token, url, "video")
    poster = None
    if final.thumbnail_url:
        try:
            poster = await media.fetch(token, final.thumbnail_url, "image")
        except (UpstreamError, ValueError, OSError) as exc:
            logger.warning("video: poster {} not cached ({})", final.thumbnail_url, exc)
    return Made(path, poster, hd=options.resolution == "HD" and not upscale_error, upscale_error=upscale_error)


def api_error(exc: Exception) -> ApiError:
    """How a failed video reads to a client: moderation is OpenAI's content-policy error,
    upstream trouble chat's statuses, the pool's refusals their own."""
    if isinstance(exc, Moderated) or (isinstance(exc, UpstreamError) and exc.failure is Failure.MODERATED):
        return ApiError(400, f"Grok refused to make this video (content moderation): {exc}", param="prompt",
                        code="content_policy_violation")
    if isinstance(exc, UpstreamError):
        status, code = http_status(exc.failure)
        retry = exc.retry_after
        headers = {"Retry-After": str(max(1, round(retry)))} if retry and status == 429 else None
        return ApiError(status, f"Grok upstream failed: {exc.message}", code=code, headers=headers)
    mapped = from_domain(exc)
    if mapped is not None:
        return mapped
    if isinstance(exc, ApiError):
        return exc
    raise exc
