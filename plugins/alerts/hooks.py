"""Hook implementations only: the ``[alerts]`` section, the request observer, the monitor and sender."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grok2api import hookimpl

if TYPE_CHECKING:
    from aiohttp import web

    from grok2api.api import CleanupContext, ConfigRegistry, ObserverRegistry, Settings


@hookimpl
def grok2api_add_config(config: ConfigRegistry) -> None:
    from grok2api_plugins.alerts.settings import AlertsSettings

    config.add_section("alerts", AlertsSettings)


@hookimpl
def grok2api_register_observers(observers: ObserverRegistry, settings: Settings) -> None:
    from grok2api_plugins.alerts.monitor import ErrorWindow

    observers.add(ErrorWindow(lambda: settings.alerts.error_window_sec))  # type: ignore[attr-defined]


@hookimpl
def grok2api_cleanup_ctx(app: web.Application) -> CleanupContext:
    from grok2api_plugins.alerts.running import running

    return running
