"""The [T] frame reader: raw frames (shapes of protocol §4) → typed events."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from grok2api.upstream import (
    CardAttachment,
    ConversationStarted,
    Dialect,
    ImageProgress,
    InStreamError,
    ModelResponse,
    ResponseMeta,
    StreamEnd,
    TextDelta,
    VideoProgress,
    WebSearchResults,
)


def response(**fields: Any) -> dict[str, Any]:
    return {"result": {"response": fields}}


def read(*frames: dict[str, Any]) -> list[Any]:
    reader = Dialect().frame_reader()
    return [event for frame in frames for event in reader.read(frame)]


def test_ids_meta_text_and_end() -> None:
    events = read(
        {"result": {"conversation": {"conversationId": "conv-1", "title": "t"}}},
        response(userResponse={"responseId": "user-1", "message": "hi"}, responseId="user-1"),
        response(llmInfo={"modelHash": "h1"}, responseId="r-1"),
        response(token="The", messageTag="final", isThinking=False, responseId="r-1"),
        response(token="", messageTag="final", responseId="r-1"),
        response(token=" end", messageTag="final", responseId="r-1", isSoftStop=True),
        response(finalMetadata={}, responseId="r-1"),
        response(modelResponse={"responseId": "r-1", "message": "The end", "generatedImageUrls": ["/", ""],
                                "metadata": {"llm_info": {"modelHash": "h1"}}}, responseId="r-1"),
    )
    assert events == [
        ConversationStarted("conv-1"),
        ResponseMeta("r-1", "h1"),
        TextDelta("The", tag="final"),
        TextDelta(" end", tag="final"),
        StreamEnd(),
        ModelResponse("r-1", "The end", model_hash="h1"),
    ]


def test_thinking_search_and_cards() -> None:
    card = '{"id":"cite-01","type":"render_inline_citation","url":"https://python.org"}'
    events = read(
        response(token="Thinking", isThinking=True, messageTag="header", messageStepId=0, responseId="r"),
        response(token="", webSearchResults={"results": [{"url": "https://python.org", "title": "Py",
                                                          "preview": "p", "extra": 1}, "junk"]},
                 isThinking=True, messageTag="raw_function_result", responseId="r"),
        response(cardAttachment={"jsonData": card}, responseId="r"),
        response(cardAttachment={"jsonData": "{not json"}, responseId="r"),
        response(modelResponse={"responseId": "r", "message": "x", "cardAttachmentsJson": [card, "bad"]}),
    )
    assert events[1] == TextDelta("Thinking", thinking=True, tag="header", step_id=0)
    assert events[2] == WebSearchResults([{"url": "https://python.org", "title": "Py", "preview": "p"}])
    assert events[3] == CardAttachment({"id": "cite-01", "type": "render_inline_citation", "url": "https://python.org"})
    assert len(events) == 5 and events[4].card_attachments == [events[3].card]


def test_image_and_video_progress() -> None:
    url = "users/u/generated/img-1/image.jpg"
    events = read(
        response(streamingImageGenerationResponse={"imageId": "img-0", "imageIndex": 0, "progress": 50}),
        response(streamingImageGenerationResponse={"imageIndex": 1, "progress": 100, "imageUrl": url,
                                                   "moderated": False}),
        response(streamingVideoGenerationResponse={"videoId": "v", "progress": 100, "videoPostId": "p",
                                                   "videoUrl": "users/u/generated/v/generated_video.mp4",
                                                   "thumbnailImageUrl": "t.jpg", "moderated": True}),
    )
    assert events == [
        ImageProgress("img-0", 0, 50),
        ImageProgress("img-1", 1, 100, url=url),
        VideoProgress("v", 100, post_id="p", url="users/u/generated/v/generated_video.mp4",
                      thumbnail_url="t.jpg", moderated=True),
    ]


def test_errors_top_level_in_response_and_stream_errors() -> None:
    events = read(
        {"error": {"code": 8, "message": "Too many requests", "details": []}},
        response(error={"message": "You've reached your usage limit."}, responseId="r"),
        response(modelResponse={"responseId": "r", "message": "", "error": "failed",
                                "streamErrors": ["boom", {"message": "bad", "code": 13}]}),
    )
    assert events[0] == InStreamError(8, "Too many requests")
    assert events[1] == InStreamError(None, "You've reached your usage limit.")
    assert events[-1].stream_errors == ["boom", "bad", "failed"]


def test_frames_of_unexpected_shape_yield_nothing() -> None:
    assert read({"result": "text"}, {"result": {"response": "x"}}, {"other": 1},
                response(token=5, streamingImageGenerationResponse="x", modelResponse=[1])) == []


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), st.sampled_from(["", "r-1", "r-2", "final", "x"]),
                    st.just({}), st.just({"modelHash": "h"}), st.just({"message": "m"}))
_RESPONSE_KEYS = ["token", "responseId", "messageTag", "isThinking", "isSoftStop", "messageStepId", "llmInfo",
                  "userResponse", "finalMetadata", "error", "modelResponse", "webSearchResults"]
_FRAMES = st.one_of(
    st.dictionaries(st.sampled_from(_RESPONSE_KEYS), _VALUES, max_size=6).map(lambda fields: response(**fields)),
    st.dictionaries(st.sampled_from(["result", "error"]), _VALUES, max_size=2),
    st.just({"result": {"conversation": {"conversationId": "c"}, "response": {"token": "t"}}}),
)


@given(st.lists(_FRAMES, max_size=12))
def test_the_shortcut_for_token_frames_reads_as_the_full_path_does(frames: list[dict[str, Any]]) -> None:
    """``read`` takes a shortcut for the common frame; a reader that takes the full path
    for every frame must see the same events."""
    quick, full = Dialect().frame_reader(), Dialect().frame_reader()
    assert [quick.read(f) for f in frames] == [full._unusual(f) for f in frames]
