"""From Grok's typed events to the two texts an OpenAI answer has: reasoning and content.

The same builder serves streaming and non-streaming answers, so both get identical
text: reasoning kept apart from content (or wrapped in ``<think>`` when configured),
tool cards and raw tool output never shown, citations turned into links, and the
kernel's response filters run over each text. Generated images are collected for the
handler, which downloads them before the account is released. With tools on offer, the
answer text first goes through the :class:`ToolCallParser`: calls leave as
``Delta.calls``, never through the filters that could change their arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from grok2api.api import (
    CardAttachment,
    ChainStream,
    Event,
    ImageProgress,
    ModelResponse,
    ResponseMeta,
    TextDelta,
    WebSearchResults,
)
from grok2api_plugins.chat.citations import Citations
from grok2api_plugins.chat.tools import ToolCall, ToolCallParser

HIDDEN_TAGS = frozenset({"tool_usage_card", "raw_function_result"})
REASONING_TAGS = frozenset({"header", "analysis"})
THINK_OPEN, THINK_CLOSE = "<think>\n", "\n</think>\n\n"


@dataclass(slots=True)
class Delta:
    reasoning: str = ""
    content: str = ""
    calls: list[ToolCall] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.reasoning or self.content or self.calls)


def is_reasoning(event: TextDelta) -> bool:
    return event.thinking or event.tag in REASONING_TAGS


def carries_answer(event: Event) -> bool:
    """Whether an event holds answer text or an image, as opposed to reasoning or tool output."""
    if isinstance(event, TextDelta):
        return bool(event.text.strip()) and event.tag not in HIDDEN_TAGS and not is_reasoning(event)
    if isinstance(event, ModelResponse):
        return bool(event.message.strip() or event.generated_image_urls)
    return False


class AnswerBuilder:
    """One answer. ``on_event`` returns what may be sent now; ``finish`` the rest."""

    def __init__(self, open_chain: Callable[[], ChainStream], *, show_reasoning: bool, think_tags: bool,
                 tools: ToolCallParser | None = None) -> None:
        self._reasoning_chain = open_chain()
        self._content_chain = open_chain()
        self._citations = Citations()
        self._show_reasoning = show_reasoning
        self._think_tags = think_tags
        self._think_open = False
        self._progress: dict[int, int] = {}
        self._tools = tools
        self.raw_content = ""  # answer text as Grok sent it, before any rewriting
        self.reasoning = ""  # what the client got as reasoning
        self.content = ""  # what the client got as content
        self.images: list[str] = []  # asset paths of generated images
        self.model_hash = ""

    def on_event(self, event: Event) -> Delta:
        if isinstance(event, TextDelta):
            if event.tag in HIDDEN_TAGS:
                return Delta()
            if is_reasoning(event):
                return self._reason(self._heading(event.text) if event.tag == "header" else event.text)
            self.raw_content += event.text
            return self._say(event.text)
        if isinstance(event, ResponseMeta):
            self.model_hash = event.model_hash or self.model_hash
        elif isinstance(event, CardAttachment):
            self._citations.add_card(event.card)
        elif isinstance(event, WebSearchResults):
            links = "".join(f"- [{r.get('title') or r['url']}]({r['url']})\n" for r in event.results if r.get("url"))
            return self._reason(f"\n{links}") if links else Delta()
        elif isinstance(event, ImageProgress):
            if self._progress.get(event.index) != event.progress:
                self._progress[event.index] = event.progress
                return self._reason(f"Generating image {event.index + 1}: {event.progress}%\n")
        elif isinstance(event, ModelResponse):
            return self._final(event)
        return Delta()

    def _heading(self, text: str) -> str:
        """A section heading of the reasoning, set off by blank lines (none before the first)."""
        return f"\n\n{text}\n\n" if self.reasoning else f"{text}\n\n"

    def _final(self, event: ModelResponse) -> Delta:
        """Cards and images of the final record, and any answer text the stream left out."""
        self.model_hash = event.model_hash or self.model_hash
        for card in event.card_attachments:
            self._citations.add_card(card)
        for url in event.generated_image_urls:
            if url not in self.images:
                self.images.append(url)
        missing = event.message[len(self.raw_content):] if event.message.startswith(self.raw_content) else ""
        if not missing:
            return Delta()
        self.raw_content += missing
        return self._say(missing)

    def _reason(self, text: str) -> Delta:
        if not self._show_reasoning:
            return Delta()
        text = self._reasoning_chain.feed(text)
        if not text:
            return Delta()
        self.reasoning += text
        if not self._think_tags:
            return Delta(reasoning=text)
        opener = "" if self._think_open else THINK_OPEN
        self._think_open = True
        return Delta(content=opener + text)

    @property
    def calls(self) -> list[ToolCall]:
        """The tool calls of the answer so far."""
        return self._tools.calls if self._tools is not None else []

    def _say(self, text: str) -> Delta:
        if self._tools is None:
            return self._text(text)
        said = Delta()
        for piece in self._tools.feed(text):
            if isinstance(piece, str):
                part = self._text(piece)
                said.content += part.content
            else:
                said.calls.append(piece)
        return said

    def _text(self, text: str) -> Delta:
        return self._content(self._content_chain.feed(self._citations.rewriter.feed(text)))

    def _content(self, text: str) -> Delta:
        if not text:
            return Delta()
        closer = THINK_CLOSE if self._think_open else ""
        self._think_open = False
        self.content += text
        return Delta(content=closer + text)

    def finish(self) -> Delta:
        """Everything held back by the filters, with an open ``<think>`` closed."""
        tail = Delta()
        reasoning = self._reasoning_chain.flush() if self._show_reasoning else ""
        if reasoning:
            self.reasoning += reasoning
            if self._think_tags:
                tail.content += reasoning
            else:
                tail.reasoning = reasoning
        held = self._citations.rewriter.feed(self._tools.flush()) if self._tools is not None else ""
        content = self._content_chain.feed(held + self._citations.rewriter.flush()) + self._content_chain.flush()
        if self._think_open:
            tail.content += THINK_CLOSE.rstrip("\n") + ("\n\n" if content else "\n")
            self._think_open = False
        self.content += content
        tail.content += content
        return tail
