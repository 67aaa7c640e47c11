"""The media cache: Grok assets downloaded once, served from ``/v1/files/{image,video}/{name}``.

Grok's asset URLs only open with the cookies of the account that made them, so answers
link to a local copy instead. A file's name is its asset path with the leading ``/``
removed and every ``/`` turned into ``-`` (the original's naming, so its cache stays
valid). Downloads of one file share a single transfer; all transfers share
``performance.assets_max_concurrent`` slots. Past ``cache.limit_mb`` the oldest files
are removed until the cache is at 80 % of the limit.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from aiohttp import web

from grok2api.config.settings import Settings
from grok2api.logs.logger import logger
from grok2api.web.appkeys import MEDIA
from grok2api.web.errors import ApiError

if TYPE_CHECKING:
    from grok2api.upstream import GrokClient

MediaKind = Literal["image", "video"]
KINDS: tuple[MediaKind, ...] = ("image", "video")
MAX_BYTES: dict[MediaKind, int] = {"image": 32 * 1024 * 1024, "video": 512 * 1024 * 1024}
TRIM_TO = 0.8
#: least time between two passes of the trim, which lists every cached file: under load a
#: pass per added file cost more CPU than the requests that added them
TRIM_PAUSE = 0.25
#: a pass at least this often while files are added, for what other workers wrote
RESCAN_SEC = 60.0
_CACHE_CONTROL = "public, max-age=31536000, immutable"


def cache_name(path_or_url: str) -> str:
    """``/users/u/generated/id/image.jpg`` (or its full URL) → ``users-u-generated-id-image.jpg``."""
    path = urlsplit(path_or_url).path if "://" in path_or_url else path_or_url.split("?")[0]
    return path.lstrip("/").replace("/", "-").replace("\\", "-")


#: longest file name the file systems the cache lives on store (bytes)
MAX_NAME_BYTES = 255


def _valid_name(name: str) -> bool:
    return (bool(name) and not name.startswith(".") and "\x00" not in name
            and len(name.encode("utf-8", "surrogateescape")) <= MAX_NAME_BYTES)


class MediaCache:
    """One per app: ``app[MEDIA]``."""

    def __init__(self, settings: Settings, client: GrokClient) -> None:
        self.settings = settings
        self.client = client
        self._inflight: dict[Path, asyncio.Task[tuple[Path, bytes | None]]] = {}
        self._slots = asyncio.Semaphore(settings.performance.assets_max_concurrent)
        self._slot_count = settings.performance.assets_max_concurrent
        self._trim_task: asyncio.Task[None] | None = None
        self._trim_again = False
        #: bytes in the cache at the last scan plus what this process added since (None: not scanned yet)
        self._estimate: int | None = None
        self._scanned_at = 0.0

    def directory(self, kind: MediaKind) -> Path:
        return self.settings.data_dir / "tmp" / kind

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """One of the ``performance.assets_max_concurrent`` transfer slots (downloads and
        uploads); a changed setting applies to transfers that start afterwards."""
        wanted = self.settings.performance.assets_max_concurrent
        if wanted != self._slot_count:
            self._slots, self._slot_count = asyncio.Semaphore(wanted), wanted
        async with self._slots:
            yield

    def resolve(self, kind: MediaKind, name: str) -> Path | None:
        """The cached file for a name from a URL, or None; never a path outside the cache."""
        name = name.replace("/", "-").replace("\\", "-")
        if not _valid_name(name):
            return None
        try:
            root = self.directory(kind).resolve()
            path = (root / name).resolve()
            if path.parent != root or not path.is_file():
                return None
        except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13), an unreadable entry
            return None
        return path

    async def fetch(self, token: str, path_or_url: str, kind: MediaKind = "image") -> Path:
        """The local copy of an asset, downloaded with ``token`` unless already cached.

        Concurrent calls for one file share one download; a caller that gives up does
        not cancel it for the others. Raises the client's ``UpstreamError`` on failure.
        """
        return (await self._fetched(token, path_or_url, kind))[0]

    async def read(self, token: str, path_or_url: str, kind: MediaKind = "image") -> bytes:
        """The bytes of :meth:`fetch`'s copy: a picture just downloaded is handed over as
        it was written, not read back."""
        path, data = await self._fetched(token, path_or_url, kind)
        return data if data is not None else await asyncio.to_thread(path.read_bytes)

    async def _fetched(self, token: str, path_or_url: str, kind: MediaKind) -> tuple[Path, bytes | None]:
        name = cache_name(path_or_url)
        if not _valid_name(name):
            raise ValueError(f"not an asset path: {path_or_url!r}")
        dest = self.directory(kind) / name
        if dest.is_file():
            return dest, None
        task = self._inflight.get(dest)
        if task is None:
            task = asyncio.create_task(self._download(token, path_or_url, dest, kind))
            self._inflight[dest] = task
            task.add_done_callback(lambda _: self._inflight.pop(dest, None))
        return await asyncio.shield(task)

    async def _download(self, token: str, path_or_url: str, dest: Path, kind: MediaKind) -> tuple[Path, bytes | None]:
        async with self.slot():
            if dest.is_file():  # another worker wrote it meanwhile
                return dest, None
            asset = await self.client.download_asset(token, path_or_url, dest, max_bytes=MAX_BYTES[kind], kind=kind)
        self.schedule_trim(asset.size)
        return dest, asset.data

    def public_url(self, kind: MediaKind, path: Path) -> str:
        base = self.settings.app.app_url.rstrip("/")
        return f"{base}/v1/files/{kind}/{path.name}"

    async def link(self, token: str, path_or_url: str, kind: MediaKind = "image") -> str:
        """What an answer shows for an asset: a link to the cached copy, or a data URI
        when ``app.image_format`` (``app.video_format`` for videos) is ``base64``."""
        path, data = await self._fetched(token, path_or_url, kind)
        fmt = self.settings.app.image_format if kind == "image" else self.settings.app.video_format
        if fmt != "base64":
            return self.public_url(kind, path)
        if data is None:
            data = await asyncio.to_thread(path.read_bytes)
        if not self.settings.cache.keep_base64_cache:
            path.unlink(missing_ok=True)
        return f"data:{_content_type(kind, data)};base64,{base64.b64encode(data).decode()}"

    def schedule_trim(self, added: int) -> None:
        """Note ``added`` bytes written to the cache, and trim in the background when the
        cache may be over its limit: a pass lists every file, so it runs only once the
        estimate (the last pass's total plus what this process wrote since) crosses the
        limit, or ``RESCAN_SEC`` after the last pass (other workers write too). One pass at
        a time; a request during a pass (or within ``TRIM_PAUSE`` after it) runs another."""
        if not self.settings.cache.enable_auto_clean:
            return
        if self._estimate is not None:
            self._estimate += added
            fresh = time.monotonic() - self._scanned_at < RESCAN_SEC
            if fresh and self._estimate <= self.settings.cache.limit_mb * 1024 * 1024:
                return
        if self.trim_running:
            self._trim_again = True
            return
        self._trim_task = asyncio.create_task(self._trim_loop())

    async def _trim_loop(self) -> None:
        self._trim_again = True
        while self._trim_again:
            self._trim_again = False
            scanned_at = time.monotonic()
            try:
                removed, total = await asyncio.to_thread(self._trim)
            except OSError:
                logger.exception("media cache trim failed")
                return
            self._estimate, self._scanned_at = total, scanned_at
            if removed:
                logger.info("media cache: removed {} old file(s) to stay under {} MB", removed,
                            self.settings.cache.limit_mb)
            await asyncio.sleep(TRIM_PAUSE)  # files added meanwhile wait for the next pass

    @property
    def trim_running(self) -> bool:
        return self._trim_task is not None and not self._trim_task.done()

    async def wait_for_trim(self) -> None:
        """Wait for a pass under way (and the pause after it) to end."""
        if self._trim_task is not None:
            await self._trim_task

    def trim(self) -> int:
        """Delete the oldest files while the cache exceeds ``cache.limit_mb``, down to 80 %;
        how many were deleted."""
        return self._trim()[0]

    def _trim(self) -> tuple[int, int]:
        """:meth:`trim`, and the bytes left in the cache."""
        limit = self.settings.cache.limit_mb * 1024 * 1024
        files: list[tuple[float, int, str]] = []
        for kind in KINDS:
            with contextlib.suppress(FileNotFoundError), os.scandir(self.directory(kind)) as entries:
                for entry in entries:
                    if entry.is_file() and not entry.name.startswith("."):
                        stat = entry.stat()
                        files.append((stat.st_mtime, stat.st_size, entry.path))
        total = sum(size for _, size, _ in files)
        if total <= limit:
            return 0, total
        removed = 0
        for _, size, path in sorted(files):
            if total <= limit * TRIM_TO:
                break
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
                removed += 1
            total -= size
        return removed, total

    async def close(self) -> None:
        tasks = [t for t in (*self._inflight.values(), self._trim_task) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


#: leading bytes of the formats Grok serves, and their types
_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (8, b"WEBP", "image/webp"),
    (4, b"ftypqt", "video/quicktime"),
    (4, b"ftyp", "video/mp4"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
)


def _content_type(kind: MediaKind, head: bytes) -> str:
    """The type a file's first bytes show (its name may lie), if it is a ``kind``; else
    ``application/octet-stream``, which no browser renders (the answer says nosniff)."""
    for offset, signature, content_type in _SIGNATURES:
        if head[offset:offset + len(signature)] == signature:
            return content_type if content_type.startswith(f"{kind}/") else "application/octet-stream"
    return "application/octet-stream"


def _serve(kind: MediaKind) -> web.RouteDef:
    def lookup(media: MediaCache, name: str) -> tuple[Path, str] | None:
        path = media.resolve(kind, name)
        if path is None:
            return None
        try:
            with path.open("rb") as file:
                return path, _content_type(kind, file.read(16))
        except OSError:  # removed by a trim since
            return None

    async def serve(request: web.Request) -> web.StreamResponse:
        found = await asyncio.to_thread(lookup, request.app[MEDIA], request.match_info["name"])
        if found is None:
            raise ApiError(404, f"{kind.capitalize()} not found", code="not_found", param="name")
        path, content_type = found
        return web.FileResponse(path, headers={"Content-Type": content_type, "Cache-Control": _CACHE_CONTROL,
                                               "X-Content-Type-Options": "nosniff"})

    return web.get(f"/v1/files/{kind}/{{name:.+}}", serve)


def media_routes() -> list[web.RouteDef]:
    """``GET /v1/files/image/{name}`` and ``/v1/files/video/{name}`` (no API key: names are unguessable)."""
    return [_serve(kind) for kind in KINDS]
