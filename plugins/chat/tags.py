"""The built-in response filter for ``grok.filter_tags``: Grok's internal markup never reaches clients.

Each listed name drops whole elements (``<xai:tool_usage_card>…</xai:tool_usage_card>``),
matched case-insensitively and wherever the stream splits them; text around them is
kept. The tag list is read when a response starts, so a run-time config change applies
to the next answer.
"""

from __future__ import annotations

from grok2api.config import Settings
from grok2api.registry import ModelSpec
from grok2api_plugins.chat.markup import ElementRewriter


def _drop(attrs: dict[str, str], raw: str) -> str:
    return ""


class TagFilter:
    """Registered by the chat plugin; :meth:`bind` gives it the app's settings at start-up."""

    name = "filter_tags"
    priority = 10

    def __init__(self) -> None:
        self._settings: Settings | None = None

    def bind(self, settings: Settings) -> None:
        self._settings = settings

    def open(self, model: ModelSpec) -> ElementRewriter | None:
        tags = self._settings.grok.filter_tags if self._settings is not None else []
        return ElementRewriter(tags, _drop) if tags else None
