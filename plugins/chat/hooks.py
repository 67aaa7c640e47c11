"""Hook implementations only: the chat models, the tag filter, the ``[chat]`` section, the start-up context."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grok2api import hookimpl

if TYPE_CHECKING:
    from aiohttp import web

    from grok2api.api import CleanupContext, ConfigRegistry, FilterRegistry, ModelRegistry, Settings


@hookimpl
def grok2api_add_config(config: ConfigRegistry) -> None:
    from grok2api_plugins.chat.settings import ChatSettings

    config.add_section("chat", ChatSettings)


@hookimpl
def grok2api_register_models(models: ModelRegistry) -> None:
    from grok2api_plugins.chat.catalog import CHAT_MODELS
    from grok2api_plugins.chat.handler import chat_completions

    for spec in CHAT_MODELS:
        models.add(spec, chat=chat_completions)


@hookimpl
def grok2api_register_filters(filters: FilterRegistry, settings: Settings) -> None:
    from grok2api_plugins.chat.tags import TagFilter

    filters.add(TagFilter(settings))


@hookimpl
def grok2api_cleanup_ctx(app: web.Application) -> CleanupContext:
    from grok2api_plugins.chat.service import chat_context

    return chat_context
