"""``GET /metrics``: off the public API, for an admin session or the scrape token."""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from grok2api.api import REGISTRIES, SETTINGS, ApiError, has_admin_session
from grok2api_plugins.metrics.instruments import Instruments
from grok2api_plugins.metrics.state import StateCollector

PATH = "/metrics"


def _presented(request: web.Request) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


async def allowed(request: web.Request) -> bool:
    """The ``[metrics] token`` (compared in constant time), else an admin session."""
    token: str = request.app[SETTINGS].metrics.token  # type: ignore[attr-defined]
    presented = _presented(request)
    if token and presented and hmac.compare_digest(presented.encode(), token.encode()):
        return True
    return await has_admin_session(request)


async def metrics(request: web.Request) -> web.Response:
    if not await allowed(request):
        raise ApiError(401, "Metrics need the [metrics] token as a bearer token, or an admin session",
                       code="invalid_metrics_token")
    instruments = next(o for o in request.app[REGISTRIES].observers.observers if isinstance(o, Instruments))
    scrape = CollectorRegistry()
    instruments.sources(scrape)
    scrape.register(StateCollector(request.app))
    return web.Response(body=generate_latest(scrape), headers={"Content-Type": CONTENT_TYPE_LATEST})


def routes() -> list[web.AbstractRouteDef]:
    return [web.get(PATH, metrics)]
