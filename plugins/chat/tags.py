"""The built-in response filter for ``grok.filter_tags``: Grok's internal markup never reaches clients.

Each listed name drops whole elements (``<xai:tool_usage_card>…</xai:tool_usage_card>``),
matched case-insensitively and wherever the stream splits them; text around them is
kept. The tag list is read when a response starts, so a run-time config change applies
to the next answer.
"""

from __future__ import annotations

from grok2api.api import ModelSpec, Settings
from grok2api_plugins.chat.markup import ElementRewriter


def _drop(attrs: dict[str, str], raw: str) -> str:
    return ""


class TagFilter:
    """Registered by the chat plugin with the app's settings, read anew for each response."""

    name = "filter_tags"
    priority = 10

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def open(self, model: ModelSpec) -> ElementRewriter | None:
        tags = self._settings.grok.filter_tags
        return ElementRewriter(tags, _drop) if tags else None
