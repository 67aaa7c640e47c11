"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens`` on the chat pipeline."""

from __future__ import annotations

from aiohttp import web

from grok2api.api import SETTINGS, ModelRequest
from grok2api_plugins.chat.handler import prepare, serve
from grok2api_plugins.chat.tools import Convention
from grok2api_plugins.chat.usage import PromptTokens
from grok2api_plugins.messages.render import MessageSurface
from grok2api_plugins.messages.request import parse_messages


async def messages(req: ModelRequest) -> web.StreamResponse:
    parsed = parse_messages(req.body)
    return await serve(req, parsed.conversation, MessageSurface(req.model.id), stream=parsed.stream)


async def count_tokens(req: ModelRequest) -> web.StreamResponse:
    """The prompt's tokens, counted as ``usage.input_tokens`` counts them (nothing goes upstream)."""
    conversation = parse_messages(req.body, count_only=True).conversation
    prompt, blobs = await prepare(req.app, conversation, Convention.of(req.app[SETTINGS].chat))  # type: ignore[attr-defined]
    return web.json_response({"input_tokens": PromptTokens.of(prompt.text, blobs).total})
