"""A model that answers locally, without Grok: it greets whoever wrote the last message."""

import time
import uuid

from aiohttp import web

from grok2api.api import FILTERS, ModelRequest, ModelSpec, invalid

HELLO = ModelSpec(
    id="hello-1",
    display_name="Hello",
    upstream_model="",
    upstream_mode="",
    rate_limit_model="",
    description="Greets you back; an example plugin model",
    owned_by="hello-plugin",
)


async def answer(req: ModelRequest) -> web.StreamResponse:
    messages = req.body.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        raise invalid("'messages' must be a non-empty list of message objects", param="messages")
    said = str(messages[-1].get("content") or "")
    stream = req.app[FILTERS].open(req.model)
    content = stream.feed(f"Hello! You said: {said}") + stream.flush()
    return web.json_response({
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model.id,
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": content, "refusal": None}}],
        "usage": {"prompt_tokens": len(said.split()), "completion_tokens": len(content.split()),
                  "total_tokens": len(said.split()) + len(content.split())},
    })
