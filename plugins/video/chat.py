"""``grok-imagine-1.0-video`` on ``POST /v1/chat/completions`` (reference-inventory §4).

The chat plugin's request parsing, attachment loader, chunk shapes and lazily opened
stream are reused: the stream's head leaves with the first progress line, so a failure
before it (every account tried) is an honest HTTP status, one after it an error chunk
and ``[DONE]``. Progress is reasoning (``reasoning_content``, or inside ``<think>`` with
``[chat] reasoning_format = "think_tags"``), shown when thinking is on. The API key's
video limit is reserved up front, settled when the video was delivered and refunded otherwise.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from grok2api.api import (
    KEYS,
    MEDIA,
    SETTINGS,
    ModelRequest,
    NoAccountAvailable,
    Reservation,
    UpstreamError,
    invalid,
    logger,
)
from grok2api_plugins.chat.answer import THINK_CLOSE, THINK_OPEN, Delta
from grok2api_plugins.chat.handler import LazyStream
from grok2api_plugins.chat.prompt import flatten
from grok2api_plugins.chat.render import Completion
from grok2api_plugins.chat.request import Attachment, Message, parse_chat
from grok2api_plugins.chat.service import CHAT
from grok2api_plugins.chat.surface import Outcome
from grok2api_plugins.chat.tools import Convention
from grok2api_plugins.chat.usage import PromptTokens
from grok2api_plugins.video.generate import Made, Moderated, Source, api_error, make_video
from grok2api_plugins.video.options import VideoOptions, parse_video_config
from grok2api_plugins.video.render import upscale_note, video_html
from grok2api_plugins.video.service import VIDEO_SERVICE


def source_image(messages: tuple[Message, ...]) -> Attachment | None:
    """The first picture of the last user message; audio and files are refused (the original's video mode)."""
    for message in messages:
        for attachment in message.attachments:
            if attachment.kind != "image":
                raise invalid(f"The video model takes only pictures; '{attachment.param}' is {attachment.kind}",
                              attachment.param, "unsupported_attachment")
    last_user = next((m for m in reversed(messages) if m.role == "user"), None)
    return next(iter(last_user.attachments), None) if last_user is not None else None


class Progress:
    """Progress lines as reasoning deltas (or think-tagged content)."""

    def __init__(self, text: str, *, show: bool, think_tags: bool) -> None:
        self.text, self.show, self.think_tags = text, show, think_tags
        self.lines: list[str] = []
        self._last = -1

    def line(self, progress: int) -> Delta:
        if not self.show or progress == self._last:
            return Delta()
        self._last = progress
        line = self.text.format(progress=progress) + "\n"
        opening = THINK_OPEN if self.think_tags and not self.lines else ""
        self.lines.append(line)
        return Delta(content=opening + line) if self.think_tags else Delta(reasoning=line)

    def close(self) -> str:
        return THINK_CLOSE if self.think_tags and self.lines else ""

    @property
    def reasoning(self) -> str:
        return "" if self.think_tags else "".join(self.lines)

    @property
    def inline(self) -> str:
        return THINK_OPEN + "".join(self.lines) + self.close() if self.think_tags and self.lines else ""


def answer_text(req: ModelRequest, made: Made) -> str:
    media, service = req.app[MEDIA], req.app[VIDEO_SERVICE]
    poster = media.public_url("image", made.poster) if made.poster is not None else None
    html = video_html(media.public_url("video", made.video), poster,
                      poster_preview=service.settings().poster_preview)
    return html + (upscale_note(made.upscale_error) if made.upscale_error else "")


class Answer:
    """One answer to one request, streamed or whole; ``delivered`` once the video went out."""

    def __init__(self, req: ModelRequest, prompt: str, options: VideoOptions, source: Source | None,
                 progress: Progress, surface: Completion, tokens: PromptTokens, charge: Reservation) -> None:
        self.req, self.prompt, self.options, self.source = req, prompt, options, source
        self.progress, self.surface, self.tokens = progress, surface, tokens
        self.charge = charge
        self.delivered = False

    async def settle(self) -> None:
        """Charge the reserved video if it was delivered, else give it back (once; before a
        failure is written, so a client that saw the failure sees the refund too)."""
        await (self.charge.settle() if self.delivered else self.charge.refund())

    async def _make(self, on_progress: Callable[[int], Awaitable[None]]) -> Made:
        return await make_video(self.req.app, self.prompt, self.options, self.source, on_progress)

    async def collect(self) -> web.Response:
        async def note(value: int) -> None:
            self.progress.line(value)

        try:
            made = await self._make(note)
        except (UpstreamError, Moderated, NoAccountAvailable) as exc:
            await self.settle()
            raise api_error(exc) from None
        outcome = Outcome(self.progress.inline + answer_text(self.req, made), self.progress.reasoning, (),
                          self.tokens, "")
        self.delivered = True
        await self.settle()  # before the answer leaves: a client may look at its usage right after
        return web.Response(body=orjson.dumps(self.surface.body(outcome)), content_type="application/json")

    async def stream(self) -> web.StreamResponse:
        sse = LazyStream(self.req.request, self.surface, self.tokens)

        async def send(value: int) -> None:
            await sse.send(self.progress.line(value), "")

        try:
            try:
                made = await self._make(send)
            except (UpstreamError, Moderated, NoAccountAvailable) as exc:
                error = api_error(exc)
                await self.settle()
                if sse.response is None:
                    raise error from None
                logger.warning("video stream failed after it began: {}", error.message)
                await sse.response.write_eof(self.surface.failure(error))
                return sse.response
            content = self.progress.close() + answer_text(self.req, made)
            await sse.send(Delta(content=content), "")
            self.delivered = True
            await self.settle()
            outcome = Outcome(self.progress.inline + content, self.progress.reasoning, (), self.tokens, "")
            await sse.end(self.surface.closing(outcome))
        except ConnectionResetError:
            logger.info("video stream: the client left")
        assert sse.response is not None  # only a write can lose the client
        return sse.response


async def video_completions(req: ModelRequest) -> web.StreamResponse:
    app, settings = req.app, req.app[SETTINGS]
    chat = parse_chat(req.body, default_stream=settings.grok.stream, default_thinking=settings.grok.thinking)
    options = parse_video_config(req.body)
    prompt = flatten(chat.messages, Convention.of(settings.chat))  # type: ignore[attr-defined]
    attachment = source_image(chat.messages)
    blob = await app[CHAT].loader.load(attachment) if attachment is not None else None
    source = Source(blob.data, blob.mime, blob.filename) if blob is not None else None
    service = app[VIDEO_SERVICE]
    progress = Progress(service.settings().progress_text, show=chat.show_reasoning,
                        think_tags=settings.chat.reasoning_format == "think_tags")  # type: ignore[attr-defined]
    answer = Answer(req, prompt.text, options, source, progress,
                    Completion(req.model.id, include_usage=chat.include_usage),
                    PromptTokens.of(prompt.text, [blob] if blob is not None else []),
                    await app[KEYS].reserve(req.identity, {"video": 1}))
    try:
        with app[CHAT].disconnects.watching(req.request):
            async with service.slots.hold(service.settings().job_poll_sec):
                return await (answer.stream() if chat.stream else answer.collect())
    finally:
        await answer.settle()
