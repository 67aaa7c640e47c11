"""Hook implementations only: the two capabilities, and their handlers on the chat models."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grok2api import hookimpl

if TYPE_CHECKING:
    from grok2api.api import CapabilityRegistry, ModelRegistry


@hookimpl
def grok2api_register_capabilities(capabilities: CapabilityRegistry) -> None:
    from grok2api.api import Capability
    from grok2api_plugins.messages.render import render_error

    capabilities.add(Capability("messages", "POST", "/v1/messages", render_error=render_error,
                                description="Anthropic Messages"))
    capabilities.add(Capability("messages_count_tokens", "POST", "/v1/messages/count_tokens",
                                render_error=render_error, description="Anthropic token counting"))


@hookimpl(trylast=True)
def grok2api_register_models(models: ModelRegistry) -> None:
    """After the chat plugin registered its models (``trylast``): serve Messages on each."""
    from grok2api_plugins.chat.catalog import CHAT_MODELS
    from grok2api_plugins.messages.handler import count_tokens, messages

    for spec in CHAT_MODELS:
        if spec.id in models.models:  # the chat plugin may be disabled
            models.add_handler(spec.id, "messages", messages)
            models.add_handler(spec.id, "messages_count_tokens", count_tokens)
