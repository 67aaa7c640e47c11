"""Saving an asset body to disk: checked content type, size cap, temp file then rename,
so a reader never sees a partial file and a failure leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from uuid import uuid4

from grok2api.upstream.errors import Failure, UpstreamError
from grok2api.upstream.results import DownloadedAsset
from grok2api.upstream.transport import UpstreamResponse

_WRITE_BATCH = 1024 * 1024


def _content_type(headers: Mapping[str, str | None], kind: Literal["image", "video"], what: str) -> str:
    """The body's media type, refused unless it fits ``kind`` (a missing video type is
    taken as ``video/mp4``)."""
    content_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind == "video" and content_type in ("", "application/octet-stream"):
        return "video/mp4"
    if not content_type.startswith(f"{kind}/"):
        raise UpstreamError(Failure.PROTOCOL, f"{what}: expected {kind}/*, got {content_type or 'no type'!r}")
    return content_type


async def save_body(response: UpstreamResponse, dest: Path, *, max_bytes: int,
                    kind: Literal["image", "video"], what: str) -> DownloadedAsset:
    content_type = _content_type(response.headers, kind, what)
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise UpstreamError(Failure.PROTOCOL, f"{what}: {declared} bytes exceed the cap of {max_bytes}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(f".{dest.name}.{uuid4().hex}.part")
    size = 0
    pending = bytearray()
    try:
        with open(temp, "wb") as file:
            async for chunk in response.chunks():
                if size == 0 and chunk[:1] in (b"<", b"{"):
                    raise UpstreamError(Failure.PROTOCOL, f"{what}: body is markup, not {kind}")
                size += len(chunk)
                if size > max_bytes:
                    raise UpstreamError(Failure.PROTOCOL, f"{what}: body exceeds the cap of {max_bytes} bytes")
                pending += chunk
                if len(pending) >= _WRITE_BATCH:
                    await asyncio.to_thread(file.write, bytes(pending))
                    pending.clear()
            await asyncio.to_thread(file.write, bytes(pending))
        if size == 0:
            raise UpstreamError(Failure.PROTOCOL, f"{what}: empty body")
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return DownloadedAsset(path=dest, content_type=content_type, size=size)
