"""Request id, access log and request observers; CORS for ``/v1``; headers on every response.

The access log names the path only: query strings may carry secrets.
"""

from __future__ import annotations

import re
import time

from aiohttp import web

from grok2api.ids import random_hex
from grok2api.logs.logger import REQUEST_ID as LOG_REQUEST_ID
from grok2api.logs.logger import logger
from grok2api.logs.request_log import CAPABILITY, COMPLETION_TOKENS, MODEL_ID, PROMPT_TOKENS
from grok2api.plugin.registries import RequestObserver, RequestRecord
from grok2api.web.appkeys import OBSERVERS
from grok2api.web.auth import IDENTITY
from grok2api.web.errors import ERROR_CODE, Handler, openai_error_body

REQUEST_ID = web.RequestKey("request_id", str)
_PREPARED_AT = web.RequestKey("prepared_at", float)
_SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
#: HTML pages run only what the gateway itself serves: no inline script or style, no framing
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Reuse a sane incoming ``X-Request-Id`` or make one; when done, log the request and
    tell the observers (the error middleware inside this one turned failures into responses)."""
    incoming = request.headers.get("X-Request-Id", "")
    request[REQUEST_ID] = incoming if _SAFE_ID.match(incoming) else random_hex()
    started = time.perf_counter()
    context = LOG_REQUEST_ID.set(request[REQUEST_ID])
    try:
        response = await handler(request)
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.info("{} {} {} {:.1f}ms", request.method, request.path, response.status, elapsed_ms)
        observers = request.app.get(OBSERVERS)
        if observers:
            _tell(observers, request, _record(request, response.status, started, elapsed_ms))
        return response
    finally:
        LOG_REQUEST_ID.reset(context)


def _record(request: web.Request, status: int, started: float, elapsed_ms: float) -> RequestRecord:
    identity = request.get(IDENTITY)
    prepared = request.get(_PREPARED_AT)
    resource = request.match_info.route.resource
    return RequestRecord(
        method=request.method, path=request.path, route=resource.canonical if resource is not None else None,
        status=status, duration_ms=elapsed_ms,
        first_byte_ms=(prepared - started) * 1000 if prepared is not None else elapsed_ms,
        request_id=request[REQUEST_ID], model=request.get(MODEL_ID), capability=request.get(CAPABILITY),
        key_name=identity.name if identity else None, error_code=request.get(ERROR_CODE),
        key_id=identity.key_id if identity else None, prompt_tokens=request.get(PROMPT_TOKENS),
        completion_tokens=request.get(COMPLETION_TOKENS))


def _tell(observers: list[RequestObserver], request: web.Request, record: RequestRecord) -> None:
    for observer in observers:
        try:
            observer.request_finished(request.app, record)
        except Exception:
            logger.exception("request observer {} failed; the request is unaffected", observer.name)


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
            "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", "*"),
            "Access-Control-Max-Age": "600",
        })
    return await handler(request)


async def stamp_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every response, streamed or not, carries the request id, is
    never content-sniffed and sends no referrer; HTML pages get a strict CSP; ``/v1``
    responses are readable from any origin; an error aiohttp wrote as text becomes an
    OpenAI error. Notes when the head left, for the observers' time to first byte."""
    request[_PREPARED_AT] = time.perf_counter()
    openai_error_body(response)
    headers = response.headers
    if REQUEST_ID in request:
        headers["X-Request-Id"] = request[REQUEST_ID]
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    if response.content_type == "text/html":
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    if _is_api(request):
        headers["Access-Control-Allow-Origin"] = "*"
        headers["Access-Control-Expose-Headers"] = "X-Request-Id, Retry-After"
