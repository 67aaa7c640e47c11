"""A response filter: softens one rude word, even when it arrives split over two chunks."""

from grok2api.api import ModelSpec

RUDE, POLITE = "darn", "d*rn"


class PoliteStream:
    def __init__(self) -> None:
        self._held = ""

    def feed(self, text: str) -> str:
        text = (self._held + text).replace(RUDE, POLITE)
        # hold back a tail that could be the start of the word
        keep = next((n for n in range(len(RUDE) - 1, 0, -1) if text.endswith(RUDE[:n])), 0)
        self._held = text[len(text) - keep:] if keep else ""
        return text[: len(text) - keep] if keep else text

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


class PoliteFilter:
    name = "polite"
    priority = 100

    def open(self, model: ModelSpec) -> PoliteStream:
        return PoliteStream()
