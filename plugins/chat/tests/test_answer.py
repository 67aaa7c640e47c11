"""The answer builder on the composed streams of the protocol notes (§4.10)."""

from __future__ import annotations

from grok2api.api import (
    CardAttachment,
    Event,
    FilterChain,
    ImageProgress,
    ModelResponse,
    ResponseMeta,
    Settings,
    TextDelta,
    WebSearchResults,
)
from grok2api_plugins.chat.answer import AnswerBuilder, Delta, carries_answer
from grok2api_plugins.chat.catalog import CHAT_MODELS
from grok2api_plugins.chat.tags import TagFilter

RENDER = ('<grok:render card_id="cite-01" card_type="citation_card" type="render_inline_citation">'
          '<argument name="citation_id">0</argument></grok:render>')
TOOL = '<xai:tool_usage_card><xai:tool_name>web_search</xai:tool_name></xai:tool_usage_card>'
THINKING_STREAM: list[Event] = [
    ResponseMeta("r-2", "hash-1"),
    TextDelta("Thinking about your request", thinking=True, tag="header"),
    TextDelta("I should search.", thinking=True, tag="analysis"),
    TextDelta(TOOL, thinking=True, tag="tool_usage_card"),
    WebSearchResults([{"url": "https://www.python.org/downloads/", "title": "Download Python", "preview": ""}]),
    CardAttachment({"id": "cite-01", "type": "render_inline_citation", "url": "https://www.python.org/downloads/"}),
    TextDelta("The latest release is on python.org", tag="final"),
    TextDelta(RENDER[:40], tag="final"),
    TextDelta(RENDER[40:] + ".", tag="final"),
    ModelResponse("r-2", "The latest release is on python.org" + RENDER + "."),
]


def builder(show: bool = True, think_tags: bool = False) -> AnswerBuilder:
    chain = FilterChain([TagFilter(Settings())])
    return AnswerBuilder(lambda: chain.open(CHAT_MODELS[0]), show_reasoning=show, think_tags=think_tags)


def run(b: AnswerBuilder, events: list[Event]) -> Delta:
    total = Delta()
    for event in events:
        delta = b.on_event(event)
        total.reasoning += delta.reasoning
        total.content += delta.content
    tail = b.finish()
    return Delta(total.reasoning + tail.reasoning, total.content + tail.content)


def test_reasoning_is_kept_apart_and_citations_become_links() -> None:
    b = builder()
    out = run(b, THINKING_STREAM)
    assert out.content == "The latest release is on python.org [[1]](https://www.python.org/downloads/)."
    assert out.reasoning == ("Thinking about your request\n\nI should search.\n"
                             "- [Download Python](https://www.python.org/downloads/)\n")
    assert "tool_usage_card" not in out.reasoning + out.content
    assert (b.model_hash, b.content, b.reasoning) == ("hash-1", out.content, out.reasoning)


def test_reasoning_hidden_when_thinking_is_off() -> None:
    out = run(builder(show=False), THINKING_STREAM)
    assert out.reasoning == ""
    assert out.content.startswith("The latest release")


def test_think_tags_wrap_reasoning_inside_content() -> None:
    out = run(builder(think_tags=True), THINKING_STREAM)
    assert out.reasoning == ""
    assert out.content.startswith("<think>\nThinking about your request\n\n")
    assert "- [Download Python](https://www.python.org/downloads/)\n\n</think>\n\nThe latest release" in out.content
    only_thoughts = run(builder(think_tags=True), [TextDelta("hmm", thinking=True)])
    assert only_thoughts.content == "<think>\nhmm\n</think>\n"


def test_final_record_fills_in_text_the_stream_left_out_and_lists_images() -> None:
    b = builder()
    out = run(b, [
        TextDelta("I'll draw", tag="final"),
        ImageProgress("a", 0, 50), ImageProgress("a", 0, 50), ImageProgress("a", 0, 100),
        ModelResponse("r", "I'll draw a fox.", generated_image_urls=["users/u/generated/a/image.jpg"]),
    ])
    assert out.content == "I'll draw a fox."
    assert out.reasoning == "Generating image 1: 50%\nGenerating image 1: 100%\n"
    assert b.images == ["users/u/generated/a/image.jpg"]


def test_only_answer_text_and_images_count_as_an_answer() -> None:
    assert [carries_answer(e) for e in THINKING_STREAM] == [False] * 6 + [True] * 4
    assert not carries_answer(TextDelta("  ", tag="final"))
    assert not carries_answer(ModelResponse("r", ""))
    assert carries_answer(ModelResponse("r", "", generated_image_urls=["users/u/generated/a/image.jpg"]))
