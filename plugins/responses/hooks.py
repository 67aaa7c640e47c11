"""Hook implementations only: the ``[responses]`` section, the capability, its handlers on
the chat models, and the routes that fetch and delete stored responses."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grok2api import hookimpl

if TYPE_CHECKING:
    from aiohttp import web

    from grok2api.api import CapabilityRegistry, ConfigRegistry, ModelRegistry


@hookimpl
def grok2api_add_config(config: ConfigRegistry) -> None:
    from grok2api_plugins.responses.settings import ResponsesSettings

    config.add_section("responses", ResponsesSettings)


@hookimpl
def grok2api_register_capabilities(capabilities: CapabilityRegistry) -> None:
    from grok2api.api import Capability

    capabilities.add(Capability("responses", "POST", "/v1/responses", description="OpenAI Responses"))


@hookimpl(trylast=True)
def grok2api_register_models(models: ModelRegistry) -> None:
    """After the chat plugin registered its models (``trylast``): serve Responses on each."""
    from grok2api_plugins.chat.catalog import CHAT_MODELS
    from grok2api_plugins.responses.handler import create

    for spec in CHAT_MODELS:
        if spec.id in models.models:  # the chat plugin may be disabled
            models.add_handler(spec.id, "responses", create)


@hookimpl
def grok2api_add_routes(app: web.Application) -> list[web.AbstractRouteDef]:
    from aiohttp import web

    from grok2api_plugins.responses.handler import delete, input_items, retrieve

    return [web.get("/v1/responses/{id}", retrieve), web.delete("/v1/responses/{id}", delete),
            web.get("/v1/responses/{id}/input_items", input_items)]
