"""One Grok prompt from a conversation (reference §2.2).

Grok's web chat takes a single message, so the history is written out: every message
but the last user one as ``role: text``, the last user message bare, blocks separated
by a blank line, in the original order. Attachments of every message are collected in
order of appearance; a message without text still contributes its attachments.

With tools on offer, the prompt starts with the convention's instructions; earlier
calls are written the way the model is told to write them, and results as
``<tool_result>`` blocks naming the call they answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from grok2api.api import invalid
from grok2api_plugins.chat.request import Attachment, Message
from grok2api_plugins.chat.tools import NO_TOOLS, Convention, Toolset

RESULT_OPEN, RESULT_CLOSE = '<tool_result call_id="{id}" name="{name}">', "</tool_result>"


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str
    attachments: tuple[Attachment, ...]


def flatten(messages: tuple[Message, ...], convention: Convention, toolset: Toolset = NO_TOOLS) -> Prompt:
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    names = {call.id: call.name for m in messages for call in m.calls}
    blocks = []
    for i, message in enumerate(messages):
        text = _body(message, names, convention)
        if text:
            blocks.append(text if i == last_user else f"{message.role}: {text}")
    attachments = tuple(a for m in messages for a in m.attachments)
    if not blocks and not attachments:
        raise invalid("The messages contain no text and no attachments", "messages", "empty_content")
    if toolset.active:
        blocks.insert(0, convention.instructions(toolset))
    return Prompt("\n\n".join(blocks), attachments)


def _body(message: Message, names: dict[str, str], convention: Convention) -> str:
    """A message's text with its calls (or, for a tool message, as the result it is)."""
    if message.role in ("tool", "function") and message.call_id:
        head = RESULT_OPEN.format(id=message.call_id, name=names.get(message.call_id, message.call_id))
        return f"{head}\n{message.text}\n{RESULT_CLOSE}"
    calls = [convention.call(c.name, c.arguments) for c in message.calls]
    return "\n".join(part for part in (message.text, *calls) if part)
