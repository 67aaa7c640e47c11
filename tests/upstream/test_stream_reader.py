"""The stream reader on split, merged, SSE-framed and garbage input."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grok2api.upstream import Failure, LineDecoder, UpstreamError

FRAMES = [{"result": {"conversation": {"conversationId": "c"}}},
          {"result": {"response": {"token": "héllo\u2028", "responseId": "r"}}},
          {"result": {"response": {"modelResponse": {"message": "done"}}}}]


def decode(chunks: list[bytes], decoder: LineDecoder | None = None) -> list[dict]:
    decoder = decoder or LineDecoder()
    frames = [frame for chunk in chunks for frame in decoder.feed(chunk)]
    return frames + decoder.flush()


def ndjson(frames: list[dict]) -> bytes:
    return b"".join(orjson.dumps(frame) + b"\n" for frame in frames)


def test_bare_ndjson_in_one_read() -> None:
    assert decode([ndjson(FRAMES)]) == FRAMES


def test_every_split_point_gives_the_same_frames() -> None:
    body = ndjson(FRAMES)
    for cut in range(len(body) + 1):
        assert decode([body[:cut], body[cut:]]) == FRAMES


def test_byte_by_byte() -> None:
    body = ndjson(FRAMES)
    assert decode([body[i:i + 1] for i in range(len(body))]) == FRAMES


def test_sse_framing_blank_event_id_comment_lines_and_done() -> None:
    body = b"".join([
        b": keep-alive\n",
        b"event: message\nid: 1\ndata: " + orjson.dumps(FRAMES[0]) + b"\n\n",
        b"retry: 1000\r\n",
        b"data:" + orjson.dumps(FRAMES[1]) + b"\r\n\r\n",
        b"data: \n",
        b"data: " + orjson.dumps(FRAMES[2]) + b"\n\n",
        b"data: [DONE]\n\n",
        b"data: " + orjson.dumps({"after": "done"}) + b"\n",
    ])
    decoder = LineDecoder()
    assert decode([body], decoder) == FRAMES
    assert decoder.done and decoder.skipped == 0


def test_garbage_and_non_object_lines_are_skipped_and_counted() -> None:
    body = b"\n".join([b"<html>oops</html>", orjson.dumps(FRAMES[0]), b"[1, 2]", b"42", b'"text"',
                       b"{broken", b"data: {also broken", orjson.dumps(FRAMES[1])]) + b"\n"
    decoder = LineDecoder()
    assert decode([body], decoder) == FRAMES[:2]
    assert decoder.skipped == 6


def test_last_line_without_newline_is_read_and_a_truncated_one_counted() -> None:
    decoder = LineDecoder()
    assert decode([ndjson(FRAMES[:1]) + orjson.dumps(FRAMES[1])], decoder) == FRAMES[:2]
    decoder = LineDecoder()
    assert decode([ndjson(FRAMES[:1]) + orjson.dumps(FRAMES[1])[:10]], decoder) == FRAMES[:1]
    assert decoder.skipped == 1


def test_a_line_without_end_beyond_the_cap_is_a_protocol_error() -> None:
    decoder = LineDecoder(max_line=100)
    decoder.feed(b"{" + b" " * 60)
    with pytest.raises(UpstreamError) as caught:
        decoder.feed(b" " * 60)
    assert caught.value.failure is Failure.PROTOCOL


_value = st.one_of(st.text(max_size=20), st.integers(-(2**53), 2**53), st.booleans(), st.none())
_frame = st.dictionaries(st.text(min_size=1, max_size=8), _value, max_size=4)
_garbage = st.sampled_from([b"<html>", b"{not json", b"[1]", b"7", b"data: {nope", b"\xff\xfe"])


@st.composite
def _stream(draw: st.DrawFn) -> tuple[list[dict], int, bytes]:
    """Frames in random framings with garbage and noise lines between them."""
    frames = draw(st.lists(_frame, max_size=12))
    parts, garbage = [], 0
    for frame in frames:
        for noise in draw(st.lists(st.one_of(_garbage, st.sampled_from([b"", b"event: x", b": c", b"id: 3"])),
                                   max_size=2)):
            parts.append(noise + draw(st.sampled_from([b"\n", b"\r\n"])))
            garbage += noise in (b"<html>", b"{not json", b"[1]", b"7", b"data: {nope", b"\xff\xfe")
        prefix = draw(st.sampled_from([b"", b"data: ", b"data:"]))
        parts.append(prefix + orjson.dumps(frame) + draw(st.sampled_from([b"\n", b"\r\n", b"\n\n"])))
    return frames, garbage, b"".join(parts)


@settings(max_examples=200, deadline=None)
@given(_stream(), st.lists(st.integers(min_value=0, max_value=10_000), max_size=10))
def test_any_framing_split_anywhere_yields_the_frames(stream: tuple[list[dict], int, bytes],
                                                      cuts: list[int]) -> None:
    frames, garbage, body = stream
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    chunks = [body[start:end] for start, end in zip([0, *points], [*points, len(body)], strict=True)]
    decoder = LineDecoder()
    assert decode(chunks, decoder) == frames
    assert decoder.skipped == garbage
