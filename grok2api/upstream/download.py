"""Saving an asset body to disk: checked content type, size cap, temp file then rename,
so a reader never sees a partial file and a failure leaves nothing behind."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, Literal
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


def _open_temp(temp: Path) -> BinaryIO:
    temp.parent.mkdir(parents=True, exist_ok=True)
    return open(temp, "wb")


def _finish(file: BinaryIO | None, temp: Path, dest: Path, rest: bytes) -> None:
    """Write what is left, then move the file into place (a reader never sees a partial file)."""
    with file or _open_temp(temp) as out:
        out.write(rest)
    os.replace(temp, dest)


async def save_body(response: UpstreamResponse, dest: Path, *, max_bytes: int,
                    kind: Literal["image", "video"], what: str) -> DownloadedAsset:
    """A body of up to ``_WRITE_BATCH`` bytes (a picture) is written by one call in a thread
    once complete, so the event loop never waits on the file system; a larger one (a
    video) is written in batches of that size as it arrives."""
    content_type = _content_type(response.headers, kind, what)
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise UpstreamError(Failure.PROTOCOL, f"{what}: {declared} bytes exceed the cap of {max_bytes}")
    temp = dest.with_name(f".{dest.name}.{uuid4().hex}.part")
    size = 0
    pending = bytearray()
    file: BinaryIO | None = None
    try:
        async for chunk in response.chunks():
            if size == 0 and chunk[:1] in (b"<", b"{"):
                raise UpstreamError(Failure.PROTOCOL, f"{what}: body is markup, not {kind}")
            size += len(chunk)
            if size > max_bytes:
                raise UpstreamError(Failure.PROTOCOL, f"{what}: body exceeds the cap of {max_bytes} bytes")
            pending += chunk
            if len(pending) >= _WRITE_BATCH:
                if file is None:
                    file = await asyncio.to_thread(_open_temp, temp)
                await asyncio.to_thread(file.write, bytes(pending))
                pending.clear()
        if size == 0:
            raise UpstreamError(Failure.PROTOCOL, f"{what}: empty body")
        rest = bytes(pending)
        await asyncio.to_thread(_finish, file, temp, dest, rest)
    except BaseException:
        if file is not None:
            file.close()
        temp.unlink(missing_ok=True)
        raise
    return DownloadedAsset(path=dest, content_type=content_type, size=size, data=rest if file is None else None)
