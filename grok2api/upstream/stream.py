"""The stream reader: network chunks → JSON frames → typed events.

Tolerates every framing seen upstream: bare NDJSON, SSE ``data:`` lines, ``event:``/
``id:``/comment lines, blank lines, ``data: [DONE]``, lines split across reads and
several lines in one read. A line that is not a JSON object is skipped and counted.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

import orjson

from grok2api.upstream.errors import Failure, UpstreamError
from grok2api.upstream.events import Event, TextDelta

MAX_LINE_BYTES = 16 * 1024 * 1024
_SSE_FIELDS = (b"event:", b"id:", b"retry:", b":")

Frame = dict[str, Any]


class LineDecoder:
    """Incremental decoder; ``skipped`` counts unparseable lines, ``done`` is set by
    ``data: [DONE]`` (lines after it are ignored)."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self._buffer = bytearray()
        self._max_line = max_line
        self.skipped = 0
        self.done = False

    def feed(self, chunk: bytes) -> list[Frame]:
        end = chunk.rfind(b"\n") + 1
        if end:
            complete = chunk[:end]
            if self._buffer:
                complete = bytes(self._buffer + complete)
                self._buffer.clear()
            chunk = chunk[end:]
        self._buffer += chunk
        if len(self._buffer) > self._max_line:
            raise UpstreamError(Failure.PROTOCOL, f"stream line longer than {self._max_line} bytes")
        return self._frames(complete.split(b"\n")) if end else []

    def flush(self) -> list[Frame]:
        """The last line when the body did not end with a newline (often a truncated one)."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return self._frames([rest])

    def _frames(self, lines: list[bytes]) -> list[Frame]:
        frames: list[Frame] = []
        for line in lines:
            if self.done:
                break
            # NDJSON's lines start with "{"; anything else is SSE framing or noise
            payload = line if line.startswith(b"{") else self._sse_payload(line)
            if payload is None:
                continue
            try:
                frame = orjson.loads(payload)
            except orjson.JSONDecodeError:
                self.skipped += 1
                continue
            if isinstance(frame, dict):
                frames.append(frame)
            else:
                self.skipped += 1
        return frames

    def _sse_payload(self, line: bytes) -> bytes | None:
        """The JSON of an SSE ``data:`` line (or of a bare line); None for framing, blank
        lines and ``data: [DONE]``, which ends the stream."""
        line = line.strip()
        if line.startswith(b"data:"):
            line = line[5:].strip()
            if line == b"[DONE]":
                self.done = True
                return None
        if not line or line.startswith(_SSE_FIELDS):
            return None
        return line


async def read_events(
    chunks: AsyncIterable[bytes],
    interpret: Callable[[Frame], list[Event]],
    decoder: LineDecoder | None = None,
) -> AsyncIterator[list[Event]]:
    """Decode ``chunks`` into frames and each frame into events with ``interpret``, in
    batches: the events of one network read, its text joined (see :func:`joined`). A
    batch, not an event, at a time: each step through an async generator costs."""
    decoder = decoder or LineDecoder()
    async for chunk in chunks:
        if events := joined([event for frame in decoder.feed(chunk) for event in interpret(frame)]):
            yield events
    if events := joined([event for frame in decoder.flush() for event in interpret(frame)]):
        yield events


def joined(events: list[Event]) -> list[Event]:
    """Adjacent pieces of text of one kind (thinking, tag and step) as one: every event
    costs each layer above a little, and a streaming client gets one chunk, not several."""
    out: list[Event] = []
    for event in events:
        last = out[-1] if out else None
        if (isinstance(event, TextDelta) and isinstance(last, TextDelta) and event.thinking == last.thinking
                and event.tag == last.tag and event.step_id == last.step_id):
            out[-1] = TextDelta(last.text + event.text, thinking=last.thinking, tag=last.tag, step_id=last.step_id)
        else:
            out.append(event)
    return out
