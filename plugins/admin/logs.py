"""``/api/v1/admin/logs…``: the gateway's log files (listed, tailed, followed over SSE) and the
request log in storage, queried with filters and paging.

A file is named by its bare name only: a name with a separator or ``..``, or one that
does not resolve to a ``*.log`` file directly inside ``admin.log_dir``, is a 400. What
the files hold was masked when it was written (the logger's patcher); the request log
holds paths without query strings and key names, never keys.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from grok2api.api import JSON, SETTINGS, STORAGE, ApiError, invalid
from grok2api_plugins.admin.respond import query_int, reply
from grok2api_plugins.admin.settings import AdminSettings

REQUEST_STREAM = "requests"
MAX_LINES = 5000
TAIL_BYTES = 1024 * 1024
#: most log entries one query reads while filtering (so a rare filter cannot scan for ever)
MAX_SCAN = 10_000
FOLLOW_POLL_SEC = 0.5


def _directory(request: web.Request) -> Path:
    config: AdminSettings = request.app[SETTINGS].admin  # type: ignore[attr-defined]
    return Path(config.log_dir)


def _files(directory: Path) -> list[dict[str, Any]]:
    files = []
    for path in directory.glob("*.log") if directory.is_dir() else []:
        if path.is_file():
            stat = path.stat()
            files.append({"name": path.name, "size_bytes": stat.st_size, "mtime_ms": int(stat.st_mtime * 1000)})
    return sorted(files, key=lambda f: (-f["mtime_ms"], f["name"]))


async def log_files(request: web.Request) -> web.Response:
    return reply(request, {"files": await asyncio.to_thread(_files, _directory(request))})


def _path(request: web.Request) -> Path:
    """The file ``?file=`` names (default: the newest), checked to be a log file of the directory."""
    directory = _directory(request)
    name = request.query.get("file", "")
    if not name:
        newest = _files(directory)
        if not newest:
            raise ApiError(404, "No log files yet", code="log_not_found")
        name = newest[0]["name"]
    if "/" in name or "\\" in name or ".." in name or not name.endswith(".log") or "\x00" in name:
        raise invalid("'file' must be the name of a .log file from the list", "file")
    root = directory.resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise invalid("'file' must be the name of a .log file from the list", "file")
    if not path.is_file():
        raise ApiError(404, "No such log file", param="file", code="log_not_found")
    return path


def _tail(path: Path, lines: int, max_bytes: int) -> list[str]:
    with path.open("rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(max(0, size - max_bytes))
        data = fh.read()
    text = data.decode("utf-8", "replace").splitlines()
    if size > max_bytes and text:
        text = text[1:]  # the first line was cut by the window
    return text[-lines:]


async def log_tail(request: web.Request) -> web.Response:
    """The original's ``?file=&lines=`` (lines clamped to 1–5000) → ``{file, lines}``."""
    path = _path(request)
    try:
        lines = min(MAX_LINES, max(1, int(request.query.get("lines", "500"))))
    except ValueError:
        raise invalid("'lines' must be an integer", "lines") from None
    return reply(request, {"file": path.name, "lines": await asyncio.to_thread(_tail, path, lines, TAIL_BYTES)})


async def log_follow(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the file's new lines as they are written (``data:`` one line each),
    until the client leaves or the file is rotated away (``event: end``)."""
    path = _path(request)
    offset, partial = path.stat().st_size, b""  # before the headers go: a line written once they arrive is sent
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    while True:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = -1
        if size < offset:  # rotated or truncated: this file is over
            await response.write(b"event: end\ndata: {}\n\n")
            return response
        if size > offset:
            with path.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read(size - offset)
            offset = size
            *complete, partial = (partial + chunk).split(b"\n")
            for line in complete:
                await response.write(b"data: " + orjson.dumps(line.decode("utf-8", "replace")) + b"\n\n")
        await asyncio.sleep(FOLLOW_POLL_SEC)


def _matches(data: JSON, query: dict[str, str]) -> bool:
    status = int(data.get("status") or 0)
    if "status" in query and query["status"] not in (str(status), f"{status // 100}xx"):
        return False
    if "model" in query and data.get("model") != query["model"]:
        return False
    if "key" in query and data.get("key") != query["key"]:
        return False
    return "path" not in query or str(data.get("path", "")).startswith(query["path"])


async def request_log(request: web.Request) -> web.Response:
    """``?limit`` (≤ 500), ``before`` (a ``seq`` from the last page), ``status`` (``429`` or
    ``5xx``), ``model``, ``key`` (a key's name), ``path`` (a prefix) → newest first."""
    limit = query_int(request, "limit", 100, 1, 500)
    before = query_int(request, "before", 0, 0, 2**62) or None
    query = {k: request.query[k] for k in ("status", "model", "key", "path") if request.query.get(k)}
    storage = request.app[STORAGE]
    items: list[JSON] = []
    scanned = 0
    while len(items) < limit and scanned < MAX_SCAN:
        batch = await storage.read_log(REQUEST_STREAM, limit=500, before_seq=before)
        if not batch:
            before = None
            break
        for entry in batch:
            scanned += 1
            before = entry.seq
            if _matches(entry.data, query):
                items.append({"seq": entry.seq, "at_ms": entry.at_ms, **entry.data})
                if len(items) == limit:
                    break
    return reply(request, {"items": items, "next_before": before if len(items) == limit or scanned >= MAX_SCAN
                           else None})


def log_routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/admin/logs/files", log_files),
        web.get("/api/v1/admin/logs/tail", log_tail),
        web.get("/api/v1/admin/logs/follow", log_follow),
        web.get("/api/v1/admin/logs/requests", request_log),
    ]
