"""``POST /v1/chat/completions`` for the chat models.

Order of work: validate, load attachments (refusals are 400s), charge the API key's
daily quota, then lease an account and go upstream. The pool rotates accounts on a
retryable failure before the first event it is handed; :func:`converse` holds back the
stream's preamble (conversation id, response id) until Grok starts answering, so an
account refused in-stream (a usage limit as the first line) is rotated too. The
stream's HTTP head goes out with the first piece of answer: until then a failure is an
honest HTTP status, after it an error chunk and ``[DONE]``. A client that goes away
cancels the upstream call and frees the account at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson
from aiohttp import web

from grok2api.web.appkeys import FILTERS, KEYS, MEDIA, POOL, SETTINGS, UPSTREAM
from grok2api.web.errors import ApiError, invalid
from grok2api.logs.logger import logger
from grok2api.pool import LeasedStream
from grok2api.plugin.registries import ModelRequest, ModelSpec
from grok2api.upstream import (
    ChatRequest,
    ConversationStarted,
    Event,
    Failure,
    InStreamError,
    ResponseMeta,
    UpstreamError,
    http_status,
)
from grok2api_plugins.chat.answer import AnswerBuilder, Delta, carries_answer
from grok2api_plugins.chat.catalog import quota_buckets
from grok2api_plugins.chat.fetch import Blob
from grok2api_plugins.chat.prompt import Prompt, flatten
from grok2api_plugins.chat.render import DONE, Completion, error_event, image_markdown
from grok2api_plugins.chat.request import parse_chat
from grok2api_plugins.chat.service import CHAT
from grok2api_plugins.chat.usage import PromptTokens, usage

A = TypeVar("A")
T = TypeVar("T")
SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
               "X-Accel-Buffering": "no"}


async def chat_completions(req: ModelRequest) -> web.StreamResponse:
    app, settings = req.app, req.app[SETTINGS]
    chat = parse_chat(req.body, default_stream=settings.grok.stream, default_thinking=settings.grok.thinking)
    prompt = flatten(chat.messages)
    service = app[CHAT]
    limit = settings.chat.max_attachments  # type: ignore[attr-defined]
    if len(prompt.attachments) > limit:
        raise invalid(f"At most {limit} attachments per request; got {len(prompt.attachments)}", "messages",
                      "too_many_attachments")
    blobs = await gather(service.loader.load, prompt.attachments)
    await app[KEYS].charge(req.identity, quota_buckets(req.model))

    builder = AnswerBuilder(lambda: app[FILTERS].open(req.model), show_reasoning=chat.show_reasoning,
                            think_tags=settings.chat.reasoning_format == "think_tags")  # type: ignore[attr-defined]
    answer = Answer(req, builder, Completion(req.model.id, include_usage=chat.include_usage),
                    PromptTokens.of(prompt.text, blobs))
    with service.disconnects.watching(req.request):
        try:
            upstream = await app[POOL].stream(
                req.model, lambda lease: converse(app, lease.token, req.model, prompt, blobs))
        except UpstreamError as exc:
            raise api_error(exc) from None
        try:
            return await (answer.stream(upstream) if chat.stream else answer.collect(upstream))
        finally:
            await upstream.aclose()


async def gather(call: Callable[[A], Awaitable[T]], items: Sequence[A]) -> list[T]:
    """``call`` on every item at once: all results, or the first failure as it was raised
    (the others are cancelled)."""
    if not items:
        return []
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(call(item)) for item in items]  # type: ignore[arg-type]
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

    def __init__(self, req: ModelRequest, builder: AnswerBuilder, completion: Completion,
                 prompt_tokens: PromptTokens) -> None:
        self.req = req
        self.builder = builder
        self.completion = completion
        self.prompt_tokens = prompt_tokens

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

    def _usage(self, images: str) -> dict[str, Any]:
        return usage(self.prompt_tokens, self.builder.reasoning, self.builder.content + images)

    async def collect(self, upstream: LeasedStream[Event]) -> web.Response:
        reasoning: list[str] = []
        content: list[str] = []
        try:
            async for event in upstream:
                delta = self.builder.on_event(event)
                reasoning.append(delta.reasoning)
                content.append(delta.content)
            tail, images = await self._finish(upstream)
        except UpstreamError as exc:
            raise api_error(exc) from None
        self.completion.system_fingerprint = self.builder.model_hash
        body = self.completion.response("".join(content) + tail.content + images,
                                        "".join(reasoning) + tail.reasoning or None, self._usage(images))
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def stream(self, upstream: LeasedStream[Event]) -> web.StreamResponse:
        completion = self.completion
        sse = LazyStream(self.req.request, completion)
        try:
            try:
                async for event in upstream:
                    await sse.send(self.builder.on_event(event), self.builder.model_hash)
                tail, images = await self._finish(upstream)
                await sse.send(tail, self.builder.model_hash)
                await sse.send(Delta(content=images), self.builder.model_hash)
            except UpstreamError as exc:
                error = api_error(exc)
                if sse.response is None:
                    raise error from None
                logger.warning("chat stream {} failed after it began: {}", completion.id, error.message)
                await sse.response.write_eof(error_event(error))
                return sse.response
            assert sse.response is not None  # converse() raised unless there was an answer
            usage_chunk = completion.usage_chunk(self._usage(images)) if completion.include_usage else b""
            # the last chunks and the end of the body in one send
            await sse.response.write_eof(completion.chunk({}, "stop") + usage_chunk + DONE)
        except ConnectionResetError:
            logger.info("chat stream {}: the client left", completion.id)
        assert sse.response is not None  # only a write can lose the client
        return sse.response


class _EventStream(web.StreamResponse):
    """An SSE response whose head leaves with its first chunk, in one send: LazyStream
    prepares it only when that chunk is ready. (aiohttp's opt-in for buffering the head;
    without it the head is one more send of its own.)"""

    _send_headers_immediately = False


class LazyStream:
    """An SSE response whose head goes out with its first chunk, so a failure before
    any answer can still be an HTTP status."""

    def __init__(self, request: web.Request, completion: Completion) -> None:
        self.request = request
        self.completion = completion
        self.response: web.StreamResponse | None = None

    async def send(self, delta: Delta, fingerprint: str) -> None:
        if not delta:
            return
        self.completion.system_fingerprint = fingerprint
        piece = {"reasoning_content": delta.reasoning} if delta.reasoning else {}
        if delta.content:
            piece["content"] = delta.content
        chunk = self.completion.chunk(piece)
        if self.response is None:
            self.response = _EventStream(headers=SSE_HEADERS)
            await self.response.prepare(self.request)
            chunk = self.completion.chunk({"role": "assistant", "content": ""}) + chunk
        await self.response.write(chunk)
