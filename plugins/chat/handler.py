"""``POST /v1/chat/completions`` for the chat models, and the pipeline every chat surface shares.

:func:`serve` answers a :class:`Conversation` in a :class:`Surface`'s format (chat
completions here; Anthropic's Messages and OpenAI's Responses in their plugins).

Order of work: validate, load attachments (refusals are 400s), reserve the API key's
daily quota, then lease an account and go upstream. The reservation is settled when
the answer ended, or when a client that got part of a stream left; it is refunded when
the answer failed (also after the stream began) or a client of a JSON answer left.
The pool rotates accounts on a retryable failure before the first event it is handed; :func:`converse` holds back the
stream's preamble (conversation id, response id) until Grok starts answering, so an
account refused in-stream (a usage limit as the first line) is rotated too. The
stream's HTTP head goes out with the first piece of answer: until then a failure is an
honest HTTP status, after it an error chunk and ``[DONE]``. A client that goes away
cancels the upstream call and frees the account at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import orjson
from aiohttp import web

from grok2api.api import (
    COMPLETION_TOKENS,
    FILTERS,
    KEYS,
    MEDIA,
    POOL,
    PROMPT_TOKENS,
    SETTINGS,
    UPSTREAM,
    ApiError,
    ChatRequest,
    ConversationStarted,
    Event,
    Failure,
    InStreamError,
    LeasedStream,
    ModelRequest,
    ModelSpec,
    Reservation,
    ResponseMeta,
    TextDelta,
    UpstreamError,
    http_status,
    invalid,
    logger,
)
from grok2api_plugins.chat.answer import HIDDEN_TAGS, AnswerBuilder, Delta, carries_answer
from grok2api_plugins.chat.catalog import quota_buckets
from grok2api_plugins.chat.fetch import Blob
from grok2api_plugins.chat.prompt import Prompt, flatten
from grok2api_plugins.chat.render import Completion, image_markdown
from grok2api_plugins.chat.request import parse_chat
from grok2api_plugins.chat.service import CHAT
from grok2api_plugins.chat.surface import Conversation, Outcome, Surface
from grok2api_plugins.chat.tools import Convention, ToolCallParser
from grok2api_plugins.chat.usage import PromptTokens, count_tokens, head

A = TypeVar("A")
T = TypeVar("T")
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
               "X-Accel-Buffering": "no"}


async def chat_completions(req: ModelRequest) -> web.StreamResponse:
    settings = req.app[SETTINGS]
    chat = parse_chat(req.body, default_stream=settings.grok.stream, default_thinking=settings.grok.thinking)
    conversation = Conversation(chat.messages, chat.toolset, chat.show_reasoning, chat.max_tokens)
    return await serve(req, conversation, Completion(req.model.id, include_usage=chat.include_usage),
                       stream=chat.stream,
                       think_tags=settings.chat.reasoning_format == "think_tags")  # type: ignore[attr-defined]


async def serve(req: ModelRequest, conversation: Conversation, surface: Surface, *, stream: bool,
                think_tags: bool = False, ended: Callable[[], Awaitable[None]] | None = None) -> web.StreamResponse:
    """The chat provider's answer to ``conversation``, written by ``surface``; ``ended`` runs
    once the answer is complete, before its last bytes leave (to store it, say)."""
    app = req.app
    rules = Convention.of(app[SETTINGS].chat)  # type: ignore[attr-defined]
    prompt, blobs = await prepare(app, conversation, rules)
    service = app[CHAT]
    charge = await app[KEYS].reserve(req.identity, quota_buckets(req.model))

    tools = ToolCallParser(rules, conversation.toolset) if conversation.toolset.active else None
    builder = AnswerBuilder(lambda: app[FILTERS].open(req.model), show_reasoning=conversation.show_reasoning,
                            think_tags=think_tags, tools=tools)
    answer = Answer(req, builder, surface, PromptTokens.of(prompt.text, blobs), charge, ended,
                    conversation.max_tokens)
    async with charge:  # what the answer did not settle is refunded
        with service.disconnects.watching(req.request):
            try:
                upstream = await app[POOL].stream(
                    req.model, lambda lease: converse(app, lease.token, req.model, prompt, blobs))
            except UpstreamError as exc:
                raise api_error(exc) from None
            try:
                return await (answer.stream(upstream) if stream else answer.collect(upstream))
            finally:
                await upstream.aclose()


async def prepare(app: web.Application, conversation: Conversation, rules: Convention) -> tuple[Prompt, list[Blob]]:
    """The prompt Grok gets and the attachments it needs, loaded (a refusal is a 400)."""
    prompt = flatten(conversation.messages, rules, conversation.toolset)
    limit = app[SETTINGS].chat.max_attachments  # type: ignore[attr-defined]
    if len(prompt.attachments) > limit:
        raise invalid(f"At most {limit} attachments per request; got {len(prompt.attachments)}", "messages",
                      "too_many_attachments")
    return prompt, await gather(app[CHAT].loader.load, prompt.attachments)


async def gather(call: Callable[[A], Coroutine[Any, Any, T]], items: Sequence[A]) -> list[T]:
    """``call`` on every item at once: all results, or the first failure as it was raised
    (the others are cancelled)."""
    if not items:
        return []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call(item)) for item in items]
    except BaseExceptionGroup as failures:
        raise failures.exceptions[0] from None
    return [t.result() for t in tasks]


async def converse(app: web.Application, token: str, model: ModelSpec, prompt: Prompt,
                   blobs: list[Blob]) -> AsyncIterator[Event]:
    """One attempt on one account: upload the attachments there, then chat."""
    client, media = app[UPSTREAM], app[MEDIA]

    async def upload(blob: Blob) -> str:
        async with media.slot():
            return (await client.upload_file(token, blob.filename, blob.mime, blob.data)).file_id

    file_ids = await gather(upload, blobs)
    request = ChatRequest(model.upstream_model, model.upstream_mode, prompt.text, file_attachments=file_ids)
    preamble: list[Event] | None = []
    answered = False
    async for event in client.chat(token, request):
        if isinstance(event, InStreamError):
            continue  # the client raises it as a classified failure right after
        answered = answered or carries_answer(event)
        if preamble is not None:
            if isinstance(event, (ConversationStarted, ResponseMeta)):
                preamble.append(event)
                continue
            for held in preamble:
                yield held
            preamble = None
        yield event
    if not answered:
        raise UpstreamError(Failure.PROTOCOL, "Grok's answer had no text and no image")


def api_error(exc: UpstreamError) -> ApiError:
    status, code = http_status(exc.failure)
    headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if exc.retry_after and status == 429 else None
    return ApiError(status, f"Grok upstream failed: {exc.message}", code=code, headers=headers)


class Answer:
    """One response to one request, streamed or collected."""

    def __init__(self, req: ModelRequest, builder: AnswerBuilder, surface: Surface, prompt_tokens: PromptTokens,
                 charge: Reservation, ended: Callable[[], Awaitable[None]] | None = None,
                 limit: int | None = None) -> None:
        self.req = req
        self.builder = builder
        self.surface = surface
        self.prompt_tokens = prompt_tokens
        self.charge = charge
        self.ended = ended
        self.limit = limit
        self._spent = 0
        self.truncated = False

    def _spend(self, event: Event) -> Event:
        """The event within the answer's token limit: text past the limit is cut off, and
        :attr:`truncated` says the answer ends here. Grok's text is counted before the
        filters, which may hold some back."""
        if self.limit is None or not isinstance(event, TextDelta) or event.tag in HIDDEN_TAGS:
            return event
        tokens = count_tokens(event.text)
        if self._spent + tokens > self.limit:
            self.truncated = True
            event = TextDelta(head(event.text, self.limit - self._spent), event.thinking, event.tag, event.step_id)
        self._spent += tokens
        return event

    async def _images(self, upstream: LeasedStream[Event]) -> str:
        """Markdown for the generated images, downloaded with the leased account's token."""
        media, client = self.req.app[MEDIA], self.req.app[UPSTREAM]

        async def link(path: str) -> tuple[str, str]:
            parts = path.strip("/").split("/")
            alt = parts[-2] if len(parts) >= 2 else "image"
            try:
                return alt, await media.link(upstream.lease.token, path, "image")
            except (UpstreamError, ValueError, OSError) as exc:
                logger.warning("image {} not cached ({}); linking Grok's URL", path, exc)
                return alt, client.asset_url(path)

        links = await gather(link, self.builder.images)
        return image_markdown(links, self.builder.content)

    async def _finish(self, upstream: LeasedStream[Event]) -> tuple[Delta, str]:
        return self.builder.finish(), await self._images(upstream)

    def _outcome(self, content: str, reasoning: str) -> Outcome:
        """The answer, whose token counts the request log's stats take from the request."""
        outcome = Outcome(content, reasoning, tuple(self.builder.calls), self.prompt_tokens, self.builder.model_hash,
                          self.truncated)
        self.req.request[PROMPT_TOKENS] = outcome.prompt.total
        self.req.request[COMPLETION_TOKENS] = outcome.output_tokens
        return outcome

    async def collect(self, upstream: LeasedStream[Event]) -> web.Response:
        reasoning: list[str] = []
        content: list[str] = []
        try:
            async for event in upstream:
                delta = self.builder.on_event(self._spend(event))
                reasoning.append(delta.reasoning)
                content.append(delta.content)
                if self.truncated:
                    break  # the rest of Grok's answer is not read: the account is free at once
            tail, images = await self._finish(upstream)
        except UpstreamError as exc:
            raise api_error(exc) from None
        outcome = self._outcome("".join(content) + tail.content + images, "".join(reasoning) + tail.reasoning)
        body = orjson.dumps(self.surface.body(outcome))
        await self.charge.settle()
        if self.ended is not None:
            await self.ended()
        return web.Response(body=body, content_type="application/json")

    async def stream(self, upstream: LeasedStream[Event]) -> web.StreamResponse:
        sse = LazyStream(self.req.request, self.surface, self.prompt_tokens)
        try:
            try:
                async for event in upstream:
                    await sse.send(self.builder.on_event(self._spend(event)), self.builder.model_hash)
                    if self.truncated:
                        break
                tail, images = await self._finish(upstream)
                await sse.send(tail, self.builder.model_hash)
                await sse.send(Delta(content=images), self.builder.model_hash)
            except UpstreamError as exc:
                error = api_error(exc)
                if sse.response is None:
                    raise error from None
                logger.warning("{} stream failed after it began: {}", self.req.capability, error.message)
                await self.charge.refund()  # before the client sees the failure
                await sse.response.write_eof(self.surface.failure(error))
                return sse.response
            outcome = self._outcome(self.builder.content + images, self.builder.reasoning)
            last = self.surface.closing(outcome)
            await self.charge.settle()
            if self.ended is not None:
                await self.ended()
            await sse.end(last)
        except ConnectionResetError:
            logger.info("{} stream: the client left", self.req.capability)
        finally:
            if sse.response is not None:  # a client that left mid-answer got part of it
                await self.charge.settle()
        assert sse.response is not None  # only a write can lose the client
        return sse.response


class LazyStream:
    """An SSE response whose head goes out with its first chunk, so a failure before
    any answer can still be an HTTP status."""

    def __init__(self, request: web.Request, surface: Surface, prompt: PromptTokens) -> None:
        self.request = request
        self.surface = surface
        self.prompt = prompt
        self.response: web.StreamResponse | None = None
        self._opening = b""

    async def open(self) -> web.StreamResponse:
        """The response, its head sent; the surface's opening events wait for the next write."""
        if self.response is None:
            self.response = web.StreamResponse(headers=SSE_HEADERS)
            await self.response.prepare(self.request)
            self._opening = self.surface.opening(self.prompt)
        return self.response

    async def send(self, delta: Delta, model_hash: str) -> None:
        if not delta:
            return
        response = await self.open()  # the opening events first: a surface may number its events
        chunk = self.surface.delta(delta, model_hash)
        opening, self._opening = self._opening, b""
        await response.write(opening + chunk)

    async def end(self, last: bytes) -> None:
        """The last events and the end of the body, in one send."""
        response = await self.open()
        opening, self._opening = self._opening, b""
        await response.write_eof(opening + last)
