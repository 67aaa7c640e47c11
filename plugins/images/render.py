"""OpenAI's image answers: the ``ImagesResponse`` body and the image stream events.

A ``b64_json`` (or ``base64``) body is written picture by picture and each picture is
encoded in slices, so an answer never holds an encoded copy of a whole picture, let
alone of all of them with the JSON around them. Grok reports no token counts: the JSON
body has no ``usage``; the stream's completed event, whose schema requires one, carries
zeros.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from typing import Any

import orjson

from grok2api_plugins.images.request import sniff

#: raw bytes per encoded slice (a multiple of 3, so the slices join into one valid base64 text)
SLICE = 3 * 256 * 1024
ZERO_USAGE = {"total_tokens": 0, "input_tokens": 0, "output_tokens": 0,
              "input_tokens_details": {"text_tokens": 0, "image_tokens": 0}}
#: the sizes OpenAI's events may name; other ratios are ``auto``
_EVENT_SIZES = {"1:1": "1024x1024", "2:3": "1024x1536", "3:2": "1536x1024"}
_FORMATS = {"image/png": "png", "image/webp": "webp"}


def encoded_length(size: int) -> int:
    return 4 * ((size + 2) // 3)


def b64_slices(data: bytes) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), SLICE):
        yield base64.b64encode(view[start:start + SLICE])


class Body:
    """A non-streaming ``ImagesResponse``: the parts to write and their total length."""

    def __init__(self, field: str, created: int | None = None) -> None:
        self.field = field
        self.created = int(time.time()) if created is None else created

    def head(self) -> bytes:
        return b'{"created":%d,"data":[' % self.created

    TAIL = b"]}"

    def item_head(self, first: bool) -> bytes:
        return (b"" if first else b",") + b'{"%s":"' % self.field.encode()

    ITEM_TAIL = b'"}'

    def length(self, sizes: list[int]) -> int:
        items = sum(len(self.item_head(i == 0)) + encoded_length(size) + len(self.ITEM_TAIL)
                    for i, size in enumerate(sizes))
        return len(self.head()) + items + len(self.TAIL)


class Events:
    """Image stream events of one answer (``image_generation.*`` or ``image_edit.*``)."""

    def __init__(self, edit: bool, aspect_ratio: str) -> None:
        self.prefix = "image_edit" if edit else "image_generation"
        self.size = _EVENT_SIZES.get(aspect_ratio, "auto")
        self.created_at = int(time.time())

    def _common(self, mime: str) -> dict[str, Any]:
        return {"created_at": self.created_at, "size": self.size, "quality": "auto", "background": "auto",
                "output_format": _FORMATS.get(mime, "jpeg")}

    def partial(self, index: int, partial_index: int, progress: int, preview: bytes | None) -> bytes:
        """``partial_image_index`` counts this picture's partial events; ``index`` and
        ``progress`` are the original's fields (which picture, how far)."""
        data = {"type": f"{self.prefix}.partial_image",
                "b64_json": base64.b64encode(preview).decode() if preview else "",
                **self._common(sniff(preview or b"") or "image/jpeg"), "partial_image_index": partial_index,
                "index": index, "progress": progress}
        return self._event(data)

    def completed(self, index: int, mime: str, data: bytes | None, url: str | None) -> bytes:
        """The picture as ``b64_json``, or (``url`` format) its link with an empty ``b64_json``."""
        event = {"type": f"{self.prefix}.completed", "b64_json": base64.b64encode(data).decode() if data else "",
                 **self._common(mime), "usage": ZERO_USAGE, "index": index}
        if url is not None:
            event["url"] = url
        return self._event(event)

    def _event(self, data: dict[str, Any]) -> bytes:
        name: str = data["type"]
        return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def error_event(body: dict[str, Any]) -> bytes:
    """The stream's last event when it fails after it began (the SDK raises it as an ``APIError``)."""
    return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"
