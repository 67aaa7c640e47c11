"""Inline citations: ``<grok:render card_id=… type="render_inline_citation">`` becomes `` [[n]](url)``.

Grok sends the card (``cardAttachment``) before the text that cites it; the element in
the text names the card. Sources are numbered in the order they are first cited. Other
``grok:render`` elements are left for the tag filter to drop.
"""

from __future__ import annotations

from typing import Any

from grok2api_plugins.chat.markup import ElementRewriter

CITATION = "render_inline_citation"


class Citations:
    """One answer's cards and the rewriter that turns their references into links."""

    def __init__(self) -> None:
        self._urls: dict[str, str] = {}  # card id -> url
        self._numbers: dict[str, int] = {}  # url -> citation number
        self.rewriter = ElementRewriter(["grok:render"], self._render)

    def add_card(self, card: dict[str, Any]) -> None:
        card_id, url = card.get("id"), card.get("url")
        if isinstance(card_id, str) and isinstance(url, str) and url.startswith(("http://", "https://")):
            self._urls[card_id] = url

    def _render(self, attrs: dict[str, str], raw: str) -> str:
        if attrs.get("type") != CITATION:
            return raw
        url = self._urls.get(attrs.get("card_id", ""))
        if url is None:
            return ""
        number = self._numbers.setdefault(url, len(self._numbers) + 1)
        return f" [[{number}]]({url})"
