"""``/api/v1/admin/cache…`` (the original's routes): the local media cache and accounts'
online assets.

Local files are named through the cache's own ``resolve``, which never yields a path
outside the cache directory (the original only replaced ``/``). Accounts are named by
``ids`` (the list's handles) or, for the original's scripts, by ``token``/``tokens``; a
full token in a URL ends up in access logs, so ``ids`` is the way. These routes take up
to :data:`MAX_ACCOUNTS` accounts at a time, as the console's chunks do; a job of kind
``clear_assets`` clears any number.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from aiohttp import web

from grok2api.api import (
    MEDIA,
    POOL,
    SETTINGS,
    UPSTREAM,
    Account,
    ApiError,
    UpstreamError,
    account_id,
    invalid,
    mask_text,
    now_ms,
    read_json,
)
from grok2api_plugins.admin.accounts import resolve_accounts
from grok2api_plugins.admin.respond import query_int, query_list, reply
from grok2api_plugins.admin.settings import AdminSettings

Kind = Literal["image", "video"]
#: most accounts one request asks Grok about (the console sends chunks of 10)
MAX_ACCOUNTS = 50


def dir_stats(directory: Path) -> dict[str, Any]:
    files = [p for p in directory.iterdir() if p.is_file()] if directory.is_dir() else []
    return {"count": len(files), "size_mb": round(sum(p.stat().st_size for p in files) / 1024 / 1024, 2)}


async def local_stats(request: web.Request) -> dict[str, Any]:
    media = request.app[MEDIA]
    return {f"local_{kind}": await asyncio.to_thread(dir_stats, media.directory(kind)) for kind in ("image", "video")}


def _config(app: web.Application) -> AdminSettings:
    section: AdminSettings = app[SETTINGS].admin  # type: ignore[attr-defined]
    return section


def _kind(value: object) -> Kind:
    if value == "image" or value == "video":
        return value
    raise invalid("'type' accepts image or video", "type")


async def cache_local(request: web.Request) -> web.Response:
    return reply(request, await local_stats(request))


def _listing(directory: Path) -> list[tuple[str, int, int]]:
    entries = []
    for path in directory.iterdir() if directory.is_dir() else []:
        if path.is_file():
            stat = path.stat()
            entries.append((path.name, stat.st_size, int(stat.st_mtime * 1000)))
    return sorted(entries, key=lambda e: (-e[2], e[0]))


async def cache_list(request: web.Request) -> web.Response:
    """``?type=image|video`` (or ``cache_type``), ``page``, ``page_size`` (≤ 1000): newest first."""
    kind = _kind(request.query.get("type") or request.query.get("cache_type"))
    page = query_int(request, "page", 1, 1, 10**9)
    size = query_int(request, "page_size", 1000, 1, 1000)
    media = request.app[MEDIA]
    entries = await asyncio.to_thread(_listing, media.directory(kind))
    images = {Path(n).stem: n for n, _, _ in await asyncio.to_thread(_listing, media.directory("image"))} \
        if kind == "video" else {}
    items = []
    for name, size_bytes, mtime in entries[(page - 1) * size:page * size]:
        item: dict[str, Any] = {"name": name, "size_bytes": size_bytes, "mtime_ms": mtime,
                                "view_url": f"/v1/files/{kind}/{name}"}
        if Path(name).stem in images:
            item["preview_url"] = f"/v1/files/image/{images[Path(name).stem]}"
        items.append(item)
    return reply(request, {"status": "success", "total": len(entries), "page": page, "page_size": size,
                           "items": items})


def _clear(directory: Path) -> dict[str, Any]:
    count = size = 0
    for path in directory.iterdir() if directory.is_dir() else []:
        if path.is_file() and not path.is_symlink():
            size += path.stat().st_size
            path.unlink(missing_ok=True)
            count += 1
    return {"count": count, "size_mb": round(size / 1024 / 1024, 2)}


async def cache_clear(request: web.Request) -> web.Response:
    kind = _kind((await read_json(request)).get("type"))
    result = await asyncio.to_thread(_clear, request.app[MEDIA].directory(kind))
    return reply(request, {"status": "success", "result": result})


async def cache_item_delete(request: web.Request) -> web.Response:
    body = await read_json(request)
    kind = _kind(body.get("type"))
    name = body.get("name")
    if not isinstance(name, str) or not name:
        raise invalid("Missing file name", "name")
    path = request.app[MEDIA].resolve(kind, name)
    if path is not None:
        await asyncio.to_thread(path.unlink, True)
    return reply(request, {"status": "success", "result": {"deleted": path is not None}})


def _accounts(request: web.Request, body: dict[str, Any]) -> list[Account]:
    accounts, missing = resolve_accounts(request, body)
    if missing:
        raise ApiError(404, f"No such account: {missing[0]}", code="token_not_found")
    if len(accounts) > MAX_ACCOUNTS:
        raise invalid(f"at most {MAX_ACCOUNTS} accounts per request; start a job (kind clear_assets) for more",
                      "ids")
    return accounts


async def _online(request: web.Request, account: Account) -> dict[str, Any]:
    try:
        assets = await request.app[UPSTREAM].list_assets(account.token)
    except UpstreamError as exc:
        return {"status": "error", "error": mask_text(str(exc))[:300],
                "last_asset_clear_at": account.last_asset_clear_at}
    return {"status": "ok", "count": len(assets), "last_asset_clear_at": account.last_asset_clear_at}


async def cache_overview(request: web.Request) -> web.Response:
    """Local stats and, for the accounts named (``ids=``, or the original's ``token=``/``tokens=``),
    how many online assets each holds, keyed by account id."""
    body = {"ids": query_list(request, "ids"), "tokens": query_list(request, "tokens") + query_list(request, "token")}
    online: dict[str, Any] = {}
    if body["ids"] or body["tokens"]:
        accounts = _accounts(request, body)
        gate = asyncio.Semaphore(_config(request.app).assets_batch_size)

        async def count(account: Account) -> dict[str, Any]:
            async with gate:
                return await _online(request, account)

        results = await asyncio.gather(*(count(a) for a in accounts))
        online = {account_id(a.token): r for a, r in zip(accounts, results, strict=True)}
    return reply(request, {**await local_stats(request), "online": online})


async def clear_assets(app: web.Application, account: Account) -> dict[str, Any]:
    """Delete every online asset of one account, ``admin.assets_delete_batch_size`` at a time,
    and note when on the account (``last_asset_clear_at``, as the original's cache page shows)."""
    client = app[UPSTREAM]
    assets = await client.list_assets(account.token)
    gate = asyncio.Semaphore(_config(app).assets_delete_batch_size)
    failed = 0

    async def delete(asset_id: str) -> None:
        nonlocal failed
        async with gate:
            try:
                await client.delete_asset(account.token, asset_id)
            except UpstreamError:
                failed += 1

    await asyncio.gather(*(delete(a.asset_id) for a in assets))
    cleared = await app[POOL].update(account.token, last_asset_clear_at=now_ms())
    return {"total": len(assets), "success": len(assets) - failed, "failed": failed,
            "last_asset_clear_at": cleared.last_asset_clear_at}


async def cache_online_clear(request: web.Request) -> web.Response:
    """The original's ``{tokens: [...]}`` (batch: ``results`` by token) or ``{token}`` (one:
    ``result``); with ``ids`` (or ``id``) the results are keyed by id."""
    body = await read_json(request)
    batch = "tokens" in body or "ids" in body
    by_token = "tokens" in body or "token" in body  # the original's scripts know their tokens
    results: dict[str, Any] = {}
    for account in _accounts(request, body):
        name = account.token if by_token else account_id(account.token)
        try:
            results[name] = {"status": "success", "result": await clear_assets(request.app, account)}
        except UpstreamError as exc:
            results[name] = {"status": "error", "error": mask_text(str(exc))[:300]}
    if batch:
        return reply(request, {"status": "success", "results": results})
    only = next(iter(results.values()))
    if only["status"] == "error":
        raise ApiError(502, f"Grok refused: {only['error']}", code="upstream_error")
    return reply(request, {"status": "success", "result": only["result"]})


def media_routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/admin/cache", cache_overview),
        web.get("/api/v1/admin/cache/local", cache_local),
        web.get("/api/v1/admin/cache/list", cache_list),
        web.post("/api/v1/admin/cache/clear", cache_clear),
        web.post("/api/v1/admin/cache/item/delete", cache_item_delete),
        web.post("/api/v1/admin/cache/online/clear", cache_online_clear),
    ]
