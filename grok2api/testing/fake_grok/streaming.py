"""Writing a chat stream as the injected faults ask: framing, write boundaries, silent
gaps, clean cuts and connection resets."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from grok2api.testing.fake_grok.faults import Fault, FaultKind

_SPLIT_PAUSE = 0.002  # long enough for each piece to leave in its own TCP segment


@dataclass
class StreamPlan:
    """How to write one stream; line indexes count frames from 0."""

    frame_delay: float = 0.0
    sse: bool = False
    merge: bool = False
    split: random.Random | None = None
    gap: tuple[int, float] | None = None  # (before line, seconds of silence)
    cut: tuple[int, bool] | None = None  # (before line, send half of that line first)
    drop: int | None = None  # reset the connection before this line

    @classmethod
    def from_faults(cls, faults: list[Fault], frame_delay: float) -> StreamPlan:
        plan = cls(frame_delay=frame_delay)
        for fault in faults:
            match fault.kind:
                case FaultKind.SSE:
                    plan.sse = True
                case FaultKind.MERGE_LINES:
                    plan.merge = True
                case FaultKind.SPLIT_LINES:
                    plan.split = random.Random(fault.seed)
                case FaultKind.IDLE_GAP:
                    plan.gap = (fault.after_lines, fault.delay)
                case FaultKind.TRUNCATE:
                    plan.cut = (fault.after_lines, fault.mid_line)
                case FaultKind.DROP:
                    plan.drop = fault.after_lines
        return plan

    def encode(self, frame: dict[str, Any]) -> bytes:
        data = orjson.dumps(frame)
        return b"event: message\ndata: " + data + b"\n\n" if self.sse else data + b"\n"


async def write_stream(request: web.Request, frames: list[dict[str, Any]], plan: StreamPlan) -> web.StreamResponse:
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream" if plan.sse else "application/json"})
    await response.prepare(request)
    lines = [plan.encode(frame) for frame in frames]
    if plan.sse:
        lines.append(b"data: [DONE]\n\n")
    pending = bytearray()

    async def flush() -> None:
        data = bytes(pending)
        pending.clear()
        if not data:
            return
        if plan.split is None or len(data) < 2:
            await response.write(data)
            return
        cuts = sorted(plan.split.sample(range(1, len(data)), min(len(data) - 1, plan.split.randint(1, 3))))
        for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
            await response.write(data[start:end])
            await asyncio.sleep(_SPLIT_PAUSE)

    async def send() -> None:
        for index, line in enumerate(lines):
            if plan.gap and index == plan.gap[0]:
                await flush()
                await asyncio.sleep(plan.gap[1])
            if plan.cut and index == plan.cut[0]:
                if plan.cut[1]:
                    pending.extend(line[: len(line) // 2])
                await flush()
                await response.write_eof()
                return
            if plan.drop is not None and index == plan.drop:
                await flush()
                if request.transport is not None:
                    request.transport.abort()
                return
            if plan.frame_delay and index:
                await flush()
                await asyncio.sleep(plan.frame_delay)
            pending.extend(line)
            if not plan.merge:
                await flush()
        await flush()
        await response.write_eof()

    try:
        await send()
    except ConnectionResetError:  # the gateway left mid-answer, as a client may: Grok just stops too
        pass
    return response
