"""The response filter chain: collected once per app, run per chunk without pluggy.

A :class:`ResponseFilter` opens one :class:`StreamFilter` per response, so filters may
keep state across chunks (a tag split over two tokens). A filter that raises is logged
and skipped for the rest of that response; the text goes on unfiltered by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from grok2api.logs.logger import logger
from grok2api.plugin.registries import ModelSpec


@runtime_checkable
class StreamFilter(Protocol):
    def feed(self, text: str) -> str:
        """Take the next piece of answer text; return what may be sent now."""

    def flush(self) -> str:
        """End of answer: return whatever was held back."""


class ResponseFilter(Protocol):
    name: str
    priority: int

    def open(self, model: ModelSpec) -> StreamFilter | None:
        """A fresh filter for one response, or None to leave this model alone."""


class FilterChain:
    def __init__(self, filters: Sequence[ResponseFilter]) -> None:
        self.filters = sorted(filters, key=lambda f: (f.priority, f.name))

    def open(self, model: ModelSpec) -> ChainStream:
        opened = []
        for f in self.filters:
            stream = f.open(model)
            if stream is not None:
                opened.append((f.name, stream))
        return ChainStream(opened)


class ChainStream:
    """One response's pass through every filter, in priority order."""

    def __init__(self, streams: list[tuple[str, StreamFilter]]) -> None:
        self._streams = streams

    def feed(self, text: str) -> str:
        return self._run(text, final=False)

    def flush(self) -> str:
        return self._run("", final=True)

    def _run(self, text: str, *, final: bool) -> str:
        for name, stream in list(self._streams):
            try:
                text = stream.feed(text) if text else ""
                if final:
                    text += stream.flush()
            except Exception:
                logger.exception("response filter {} failed; skipping it for this response", name)
                self._streams = [s for s in self._streams if s[0] != name]
        return text
