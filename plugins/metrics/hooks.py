"""Hook implementations only: the ``[metrics]`` section, the request observer, ``GET /metrics``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grok2api import hookimpl

if TYPE_CHECKING:
    from aiohttp import web

    from grok2api.api import ConfigRegistry, ObserverRegistry, Settings


@hookimpl
def grok2api_add_config(config: ConfigRegistry) -> None:
    from grok2api_plugins.metrics.settings import MetricsSettings

    config.add_section("metrics", MetricsSettings)


@hookimpl
def grok2api_register_observers(observers: ObserverRegistry, settings: Settings) -> None:
    from grok2api_plugins.metrics.workers import multiprocess_dir

    shared = multiprocess_dir(settings.server.workers)  # before the next line imports prometheus_client
    from grok2api_plugins.metrics.instruments import Instruments

    observers.add(Instruments(shared))


@hookimpl
def grok2api_add_routes(app: web.Application) -> list[web.AbstractRouteDef]:
    from grok2api_plugins.metrics.endpoint import routes

    return routes()
