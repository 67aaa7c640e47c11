"""Links into this gateway's own media cache, read from disk instead of fetched.

The chat page uploads a picture (``POST /v1/uploads/image``) and sends its link,
``<app.app_url>/v1/files/image/<name>``, as an ``image_url`` part. Fetching that link
would go to the gateway's own address, which the outbound guard refuses when it is
loopback or private (and which needs no network anyway). The cache's files are public
to whoever holds their link, so reading one gives a client nothing it could not fetch.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

from aiohttp import web
from yarl import URL

from grok2api.api import MEDIA, SETTINGS, invalid
from grok2api_plugins.chat.fetch import Blob
from grok2api_plugins.chat.request import Attachment

Kind = Literal["image", "video"]
_KINDS: dict[str, Kind] = {"image": "image", "video": "video"}


def _cached_name(app: web.Application, source: str) -> tuple[Kind, str] | None:
    """``(kind, name)`` when ``source`` links into this gateway's ``/v1/files/``, else None."""
    if not source[:8].lower().startswith(("http://", "https://")):
        return None
    base = URL(app[SETTINGS].app.app_url.rstrip("/"))
    try:
        url = URL(source)
    except ValueError:
        return None
    prefix = base.path.rstrip("/") + "/v1/files/"
    if url.origin() != base.origin() or not url.raw_path.startswith(prefix):
        return None
    kind, _, name = url.raw_path[len(prefix):].partition("/")
    return (_KINDS[kind], unquote(name)) if kind in _KINDS and name else None


def _read(path: Path, limit: int) -> bytes | None:
    """The file's bytes, or None when it is larger than ``limit``."""
    with path.open("rb") as file:
        data = file.read(limit + 1)
    return data if len(data) <= limit else None


async def load_own(app: web.Application, attachment: Attachment) -> Blob | None:
    """The cached file an attachment links to, or None when it is no link of ours; a link
    of ours to a file the cache no longer holds is a 400 naming the field."""
    found = _cached_name(app, attachment.source)
    if found is None:
        return None
    kind, name = found
    path = app[MEDIA].resolve(kind, name)
    param = attachment.param
    if path is None:
        raise invalid(f"{param} links to a file this gateway's media cache does not hold (it may have been "
                      "cleaned up): upload it again", param, "attachment_not_found")
    limit = int(app[SETTINGS].chat.fetch_max_mb * 1024 * 1024)  # type: ignore[attr-defined]
    try:
        data = await asyncio.to_thread(_read, path, limit)
    except OSError:  # removed by a trim since
        raise invalid(f"{param} links to a file that was just removed from the media cache", param,
                      "attachment_not_found") from None
    if data is None:
        raise invalid(f"{param} is larger than the chat.fetch_max_mb limit", param, "attachment_too_large")
    mime = attachment.mime or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Blob(data, mime, attachment.filename or path.name)
