"""Request id and access log. The log names the path only: query strings may carry secrets."""

from __future__ import annotations

import re
import time

from aiohttp import web

from grok2api.appkeys import REQUEST_LOG
from grok2api.auth import IDENTITY, needs_api_key
from grok2api.errors import Handler
from grok2api.ids import random_hex
from grok2api.logging import REQUEST_ID as LOG_REQUEST_ID
from grok2api.logging import logger
from grok2api.request_log import MODEL_ID

REQUEST_ID = web.RequestKey("request_id", str)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Reuse a sane incoming ``X-Request-Id`` or make one, and log the request when done."""
    incoming = request.headers.get("X-Request-Id", "")
    request[REQUEST_ID] = incoming if _SAFE_ID.match(incoming) else random_hex()
    started = time.perf_counter()
    context = LOG_REQUEST_ID.set(request[REQUEST_ID])
    try:
        response = await handler(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.info("{} {} {} {:.1f}ms", request.method, request.path, response.status, elapsed_ms)
        log = request.app.get(REQUEST_LOG)
        if log is not None and needs_api_key(request.path):
            identity = request.get(IDENTITY)
            log.record(method=request.method, path=request.path, status=response.status, duration_ms=elapsed_ms,
                       model=request.get(MODEL_ID), key_name=identity.name if identity else None)
        return response
    finally:
        LOG_REQUEST_ID.reset(context)


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/v1/")


@web.middleware
async def cors_preflight_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer browsers' CORS preflights for ``/v1`` before auth (a preflight carries no key).

    ``/v1`` authenticates by a bearer header, never by cookies, so any origin may call
    it; admin routes get no CORS headers and stay same-origin.
    """
    if request.method == "OPTIONS" and _is_api(request) and "Access-Control-Request-Method" in request.headers:
        return web.Response(status=204, headers={
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", "*"),
            "Access-Control-Max-Age": "600",
        })
    return await handler(request)


async def stamp_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every response, streamed or not, carries the request id;
    ``/v1`` responses are readable from any origin."""
    if REQUEST_ID in request:
        response.headers["X-Request-Id"] = request[REQUEST_ID]
    if _is_api(request):
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Expose-Headers"] = "X-Request-Id, Retry-After"
