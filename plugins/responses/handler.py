"""``POST /v1/responses`` on the chat pipeline; stored responses fetched, listed and deleted.

A stored response (``store``, the default) is one storage record with a time-to-live
(``[responses] store_ttl_hours``), so every worker sees it: the response, this
request's input items and the items before them, which ``previous_response_id``
continues from. Only the API key that made a response can read, continue or delete it.
A response the storage engine refuses is still answered, and logged as not stored.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from grok2api.api import IDENTITY, SETTINGS, STORAGE, ApiError, ModelRequest, StorageError, invalid, logger
from grok2api_plugins.chat.handler import serve
from grok2api_plugins.responses.render import ResponseSurface
from grok2api_plugins.responses.request import Item, conversation, parse_responses

NS = "responses"


def owner(request: web.Request) -> str:
    identity = request[IDENTITY]
    return identity.key_id or identity.name


async def stored(request: web.Request, response_id: str, param: str | None = None) -> dict[str, Any]:
    record = await request.app[STORAGE].get(NS, response_id) if response_id.startswith("resp_") else None
    if not isinstance(record, dict) or record.get("owner") != owner(request):
        raise ApiError(404, f"No response with id '{response_id[:100]}' is stored", param=param, code="not_found")
    return record


async def create(req: ModelRequest) -> web.StreamResponse:
    parsed = parse_responses(req.body)
    history: list[Item] = []
    if parsed.previous_response_id:
        previous = await stored(req.request, parsed.previous_response_id, "previous_response_id")
        history = [*previous["context"], *previous["input"], *previous["response"]["output"]]
    surface = ResponseSurface(req.model.id, parsed)

    async def keep() -> None:
        if parsed.store and surface.completed is not None:
            ttl = req.app[SETTINGS].responses.store_ttl_hours * 3600  # type: ignore[attr-defined]
            record = {"owner": owner(req.request), "response": surface.completed, "input": parsed.items,
                      "context": history}
            try:
                await req.app[STORAGE].put(NS, surface.id, record, ttl=ttl)
            except StorageError as exc:  # the answer stands; it only cannot be fetched or continued
                logger.warning("response {} not stored: {}", surface.id, exc)

    return await serve(req, conversation(parsed, history), surface, stream=parsed.stream, ended=keep)


async def retrieve(request: web.Request) -> web.Response:
    return web.json_response((await stored(request, request.match_info["id"]))["response"])


async def delete(request: web.Request) -> web.Response:
    response_id = request.match_info["id"]
    await stored(request, response_id)
    await request.app[STORAGE].delete(NS, response_id)
    return web.json_response({"id": response_id, "object": "response.deleted", "deleted": True})


async def input_items(request: web.Request) -> web.Response:
    """The response's input items, newest first unless ``order=asc``, ``limit`` (1-100, 20) at a time
    after the item ``after``."""
    items: list[Item] = list((await stored(request, request.match_info["id"]))["input"])
    order = request.query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid("'order' must be asc or desc", "order")
    try:
        limit = int(request.query.get("limit", "20"))
    except ValueError:
        raise invalid("'limit' must be an integer from 1 to 100", "limit") from None
    if not 1 <= limit <= 100:
        raise invalid("'limit' must be an integer from 1 to 100", "limit")
    if order == "desc":
        items.reverse()
    after = request.query.get("after")
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    page = items[:limit]
    return web.json_response({"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                              "last_id": page[-1]["id"] if page else None, "has_more": len(items) > limit})
