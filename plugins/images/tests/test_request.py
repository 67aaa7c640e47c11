"""Whatever a body holds, validation answers with the request or a 400 naming a field."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from grok2api.api import ApiError, UploadedFile
from grok2api_plugins.images.request import FORMATS, parse

_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                       lambda inner: st.lists(inner, max_size=3), max_leaves=5)
_FILES = st.lists(st.builds(UploadedFile, st.text(max_size=8), st.text(max_size=8), st.binary(max_size=32)),
                  max_size=3)
_FIELDS = ("prompt", "n", "size", "response_format", "stream", "concurrency", "image", "mask")


@settings(max_examples=120, deadline=None)
@given(body=st.dictionaries(st.sampled_from(_FIELDS), _VALUES | _FILES), edit=st.booleans())
def test_any_body_is_a_request_or_a_named_400(body: dict[str, Any], edit: bool) -> None:
    try:
        ask = parse(body, default_format="url", edit=edit)
    except ApiError as error:
        assert error.status == 400 and error.param in _FIELDS
        return
    assert ask.prompt and 1 <= ask.n <= 10 and ask.response_format in FORMATS and 1 <= ask.concurrency <= 3
    assert not ask.stream or ask.n <= 2
    assert (1 <= len(ask.images) <= 16) if edit else not ask.images
