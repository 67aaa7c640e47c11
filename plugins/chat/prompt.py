"""One Grok prompt from an OpenAI conversation (reference §2.2).

Grok's web chat takes a single message, so the history is written out: every message
but the last user one as ``role: text``, the last user message bare, blocks separated
by a blank line, in the original order. Attachments of every message are collected in
order of appearance; a message without text still contributes its attachments.
"""

from __future__ import annotations

from dataclasses import dataclass

from grok2api.api import invalid
from grok2api_plugins.chat.request import Attachment, Message


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str
    attachments: tuple[Attachment, ...]


def flatten(messages: tuple[Message, ...]) -> Prompt:
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    blocks = [m.text if i == last_user else f"{m.role}: {m.text}" for i, m in enumerate(messages) if m.text]
    attachments = tuple(a for m in messages for a in m.attachments)
    if not blocks and not attachments:
        raise invalid("The messages contain no text and no attachments", "messages", "empty_content")
    return Prompt("\n\n".join(blocks), attachments)
