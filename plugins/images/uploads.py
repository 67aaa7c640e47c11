"""``POST /v1/uploads/image``: one picture into the media cache, for the chat page's attachments.

The original took any part whose declared type began with ``image/`` and any size. Here
the bytes themselves must be a PNG, JPEG, WebP or GIF picture (a declared type or a file
name proves nothing) and at most ``images.upload_max_mb``. The answer links to the
cached copy under ``/v1/files/image/``; the chat plugin reads such links of its own
gateway from the cache instead of fetching them.
"""

from __future__ import annotations

import asyncio
import secrets

from aiohttp import web

from grok2api.api import IDENTITY, KEYS, MEDIA, SETTINGS, ApiError, UploadedFile, invalid, read_multipart
from grok2api_plugins.images.handler import write_image
from grok2api_plugins.images.request import sniff
from grok2api_plugins.images.settings import ImagesSettings

FIELD = "file"
_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif"}
_MB = 1024 * 1024


def picture_type(data: bytes) -> str | None:
    """The upload's type from its first bytes: the edit endpoint's three, and GIF."""
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return sniff(data)


def _the_file(body: dict[str, object]) -> UploadedFile:
    files = body.get(FIELD)
    if files is None:
        raise invalid(f"'{FIELD}' is required: send the picture as a file part named {FIELD}", FIELD, "missing_file")
    if not isinstance(files, list) or not all(isinstance(f, UploadedFile) for f in files):
        raise invalid(f"'{FIELD}' must be a file part of a multipart form, not a text field", FIELD, "invalid_file")
    if len(files) != 1:
        raise invalid(f"Send one picture per upload; got {len(files)} '{FIELD}' parts", FIELD, "invalid_file_count")
    file = files[0]
    assert isinstance(file, UploadedFile)
    return file


def _name(mime: str) -> str:
    """``upload-<32 hex>.<ext>``, from the OS's randomness: the file is served to anyone
    who has its link, so the link must not be guessable from other links."""
    return f"upload-{secrets.token_hex(16)}{_EXTENSIONS[mime]}"


async def upload_rules(request: web.Request) -> web.Response:
    """``GET /v1/uploads/image``: what an upload may be, so a page can check a file before sending it."""
    settings: ImagesSettings = request.app[SETTINGS].images  # type: ignore[attr-defined]
    return web.json_response({"field": FIELD, "max_bytes": int(settings.upload_max_mb * _MB),
                              "mime_types": sorted(_EXTENSIONS)})


async def upload_image(request: web.Request) -> web.Response:
    async with request.app[KEYS].admit(request[IDENTITY], None):  # the key's rpm and concurrency
        return await _store_upload(request)


async def _store_upload(request: web.Request) -> web.Response:
    settings: ImagesSettings = request.app[SETTINGS].images  # type: ignore[attr-defined]
    file = _the_file(await read_multipart(request))
    limit = int(settings.upload_max_mb * _MB)
    if not file.data:
        raise invalid(f"'{FIELD}' is empty", FIELD, "empty_file")
    if len(file.data) > limit:
        raise ApiError(413, f"'{FIELD}' is {len(file.data) / _MB:.1f} MB; the limit is {settings.upload_max_mb:g} MB "
                       "(images.upload_max_mb)", param=FIELD, code="file_too_large")
    mime = picture_type(file.data)
    if mime is None:
        raise invalid(f"'{FIELD}' is not a PNG, JPEG, WebP or GIF picture (judged by its bytes)", FIELD,
                      "invalid_image_type")
    media = request.app[MEDIA]
    path = await asyncio.to_thread(write_image, media, _name(mime), file.data)
    media.schedule_trim(len(file.data))
    return web.json_response({"url": media.public_url("image", path), "name": path.name,
                              "size_bytes": len(file.data), "mime_type": mime})
