"""The ``b64_json`` body: written in slices of a picture, never one whole encoded copy, and
its announced length is the length written."""

from __future__ import annotations

import base64
import os

import orjson

from grok2api_plugins.images.render import SLICE, Body, b64_slices


def test_slices_join_into_the_picture_and_stay_small() -> None:
    picture = os.urandom(2 * SLICE + 5)
    slices = list(b64_slices(picture))
    assert len(slices) == 3 and all(len(piece) <= 4 * SLICE // 3 for piece in slices)
    assert b"".join(slices) == base64.b64encode(picture)


def test_the_body_is_json_of_the_announced_length() -> None:
    pictures = [os.urandom(size) for size in (1, 2, 3, SLICE + 1)]
    body = Body("b64_json", created=7)
    parts = [body.head()]
    for position, picture in enumerate(pictures):
        parts += [body.item_head(position == 0), *b64_slices(picture), body.ITEM_TAIL]
    written = b"".join([*parts, body.TAIL])
    assert len(written) == body.length([len(p) for p in pictures])
    data = orjson.loads(written)
    assert data["created"] == 7 and [base64.b64decode(i["b64_json"]) for i in data["data"]] == pictures
