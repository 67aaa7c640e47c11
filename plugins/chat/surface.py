"""What the chat provider's one pipeline takes and gives, for every API that speaks through it.

OpenAI's chat completions, Anthropic's Messages and OpenAI's Responses each translate
their request into a :class:`Conversation` and hand :func:`~grok2api_plugins.chat.handler.serve`
a :class:`Surface`: the pipeline (attachments, quota, account rotation, the upstream
call, filters, tool-call parsing, usage, failure semantics) is the same for all three,
only the bytes differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from grok2api.api import ApiError
from grok2api_plugins.chat.answer import Delta
from grok2api_plugins.chat.request import Message
from grok2api_plugins.chat.tools import ToolCall, Toolset
from grok2api_plugins.chat.usage import PromptTokens, count_tokens


@dataclass(frozen=True, slots=True)
class Conversation:
    """A request in the pipeline's terms: the history, the tools on offer, whether to show reasoning."""

    messages: tuple[Message, ...]
    toolset: Toolset = Toolset()
    show_reasoning: bool = False
    max_tokens: int | None = None  # the answer stops at the first chunk that reaches it


@dataclass(frozen=True, slots=True)
class Outcome:
    """The whole answer, once it ended."""

    content: str
    reasoning: str
    calls: tuple[ToolCall, ...]
    prompt: PromptTokens
    model_hash: str
    truncated: bool = False  # stopped at the request's token limit

    @property
    def reasoning_tokens(self) -> int:
        return count_tokens(self.reasoning)

    @property
    def call_tokens(self) -> int:
        return sum(count_tokens(c.name) + count_tokens(c.arguments) for c in self.calls)

    @property
    def output_tokens(self) -> int:
        """Reasoning, text and calls: everything the model wrote."""
        return self.reasoning_tokens + count_tokens(self.content) + self.call_tokens


class Surface(Protocol):
    """One API's wire format for an answer, streamed (``opening``, ``delta``…, then
    ``closing`` or ``failure``) or whole (``body``)."""

    def opening(self, prompt: PromptTokens) -> bytes:
        """The events that precede the first delta (sent with it, in one write)."""

    def delta(self, delta: Delta, model_hash: str) -> bytes: ...

    def closing(self, outcome: Outcome) -> bytes:
        """The stream's last events, once the answer ended well."""

    def failure(self, error: ApiError) -> bytes:
        """The stream's last event when the upstream failed after it began."""

    def body(self, outcome: Outcome) -> dict[str, Any]:
        """The non-streaming response body."""
