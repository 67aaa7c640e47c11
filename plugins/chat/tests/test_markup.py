"""The tag filter and citation links, fed in every possible split."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from grok2api.api import Settings, StreamFilter
from grok2api_plugins.chat.catalog import CHAT_MODELS
from grok2api_plugins.chat.citations import Citations
from grok2api_plugins.chat.markup import ElementRewriter
from grok2api_plugins.chat.tags import TagFilter

CARD = ('<xai:tool_usage_card><xai:tool_usage_card_id>card-7f3a</xai:tool_usage_card_id>'
        '<xai:tool_name>web_search</xai:tool_name><xai:tool_args><![CDATA[{"query":"a<b"}]]></xai:tool_args>'
        '</xai:tool_usage_card>')
RENDER = ('<grok:render card_id="cite-01" card_type="citation_card" type="render_inline_citation">'
          '<argument name="citation_id">0</argument></grok:render>')


def run(stream: StreamFilter | None, pieces: list[str]) -> str:
    assert stream is not None
    return "".join(stream.feed(p) for p in pieces) + stream.flush()


def tag_stream(tags: tuple[str, ...] = ("xaiartifact", "xai:tool_usage_card", "grok:render")) -> StreamFilter | None:
    settings = Settings()
    settings.grok.filter_tags = list(tags)
    return TagFilter(settings).open(CHAT_MODELS[0])


def splits(text: str) -> st.SearchStrategy[list[str]]:
    cuts = st.lists(st.integers(0, len(text)), max_size=8).map(sorted)
    return cuts.map(lambda c: [text[a:b] for a, b in zip([0, *c], [*c, len(text)], strict=True)])


TEXT = f"Before {CARD}middle <b>bold</b> a < b, x<y {RENDER}. <XAIARTIFACT id='1'>code</xaiArtifact>after <grok"


@settings(max_examples=200, deadline=None)
@given(splits(TEXT))
def test_tag_filter_drops_elements_in_any_split(pieces: list[str]) -> None:
    assert run(tag_stream(), pieces) == "Before middle <b>bold</b> a < b, x<y . after <grok"


def test_unclosed_element_is_dropped_and_plain_text_is_kept() -> None:
    assert run(tag_stream(), ["keep <xai:tool_usage_card>secret"]) == "keep "
    assert run(tag_stream(), ["a <grok:renderer>kept</grok:renderer>"]) == "a <grok:renderer>kept</grok:renderer>"
    assert tag_stream(()) is None


def test_untouched_text_is_not_held_back() -> None:
    stream = tag_stream()
    assert stream is not None
    assert stream.feed("hello <b>") == "hello <b>"
    assert stream.feed("x <gro") == "x "
    assert stream.feed("und") == "<ground"


@settings(max_examples=100, deadline=None)
@given(splits(f"Python is on python.org{RENDER}, twice{RENDER} and{RENDER.replace('cite-01', 'nope')}."))
def test_citations_become_numbered_links(pieces: list[str]) -> None:
    citations = Citations()
    citations.add_card({"id": "cite-01", "type": "render_inline_citation", "url": "https://www.python.org/"})
    out = run(citations.rewriter, pieces)
    assert out == ("Python is on python.org [[1]](https://www.python.org/), twice [[1]](https://www.python.org/)"
                   " and.")


def test_other_render_elements_are_left_for_the_filter() -> None:
    citations = Citations()
    raw = '<grok:render card_id="x" type="render_searched_image"></grok:render>'
    assert run(citations.rewriter, [raw]) == raw
    assert run(ElementRewriter([], lambda a, r: ""), [raw]) == raw
