"""Reading request bodies for the dispatcher: JSON objects and multipart forms.

Every body is read here, so the limits that keep client input from becoming a 500 sit
here once: the time the body may take to arrive (``server.body_timeout_sec``), a
``Content-Encoding`` that does not match the bytes, and the nesting depth of JSON (past
:data:`MAX_JSON_DEPTH`, ``str()`` and the JSON encoder of a nested value fail). The size
is the app's ``client_max_size`` (``app.max_request_mb``, a 413).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import BodyPartReader, web

from grok2api.web.appkeys import SETTINGS
from grok2api.web.errors import ApiError, invalid

#: deepest nesting of arrays and objects in a JSON body; real requests (tool schemas
#: included) stay far below it
MAX_JSON_DEPTH = 64
#: how many steps of the too-deep branch its ``param`` names
_PARAM_STEPS = 6


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """One file part of a multipart body, read whole (the body size limit bounds it)."""

    filename: str
    content_type: str
    data: bytes


@asynccontextmanager
async def _receiving(request: web.Request) -> AsyncIterator[None]:
    """Bound the wait for the body and turn aiohttp's refusals of its bytes into 4xx errors."""
    timeout = request.app[SETTINGS].server.body_timeout_sec
    try:
        async with asyncio.timeout(timeout):
            yield
    except TimeoutError:
        raise ApiError(408, f"The request body did not arrive within {timeout:g} s", param="body",
                       code="body_timeout") from None
    except web.RequestPayloadError:
        if "Content-Encoding" in request.headers:
            raise invalid("The request body is not encoded as its Content-Encoding header says",
                          "Content-Encoding", "invalid_content_encoding") from None
        raise invalid("The request body is incomplete or malformed", "body", "invalid_body") from None


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or a 4xx naming ``body`` (or the field nested too deep)."""
    async with _receiving(request):
        raw = await request.read()
    if not raw.strip():
        raise invalid("Request body is empty; send a JSON object", param="body", code="empty_body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"Invalid JSON in request body: {exc}", param="body", code="invalid_json") from None
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object", param="body", code="invalid_json")
    # a body with fewer brackets than the limit cannot be nested past it
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _depth(body, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        param = _deep_path(body, _PARAM_STEPS)
        raise invalid(f"'{param}' is nested deeper than {MAX_JSON_DEPTH} levels", param, "too_deep")
    return body


def _deep_path(body: dict[str, Any], steps: int) -> str:
    """The first ``steps`` steps towards the deepest container, as ``a[0].b``."""
    path = ""
    node: Any = body
    for _ in range(steps):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        deepest = max(((key, child) for key, child in items if isinstance(child, dict | list)),
                      key=lambda pair: _depth(pair[1]), default=None)
        if deepest is None:
            break
        key, node = deepest
        path += f"[{key}]" if isinstance(key, int) else (f".{key}" if path else str(key))
    return path or "body"


def _depth(value: Any, stop_past: int | None = None) -> int:
    """How deep arrays and objects nest in ``value`` (iterative: no recursion limit); once
    past ``stop_past`` the walk ends there."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if stop_past is not None and depth > stop_past:
            break
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


async def read_multipart(request: web.Request) -> dict[str, Any]:
    """Fields as strings; repeated fields and files as lists (``image[]`` and ``image`` alike)."""
    if not request.content_type.startswith("multipart/"):
        raise invalid("Expected a multipart/form-data body", param="body", code="invalid_content_type")
    body: dict[str, Any] = {}
    try:
        async with _receiving(request):
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader) or not part.name:
                    continue
                name = part.name.removesuffix("[]")
                if part.filename is not None:
                    value: Any = UploadedFile(part.filename,
                                              part.headers.get("Content-Type", "application/octet-stream"),
                                              bytes(await part.read()))
                    body.setdefault(name, []).append(value)
                else:
                    text = await part.text()
                    if name in body:
                        existing = body[name]
                        body[name] = (existing if isinstance(existing, list) else [existing]) + [text]
                    else:
                        body[name] = text
    except (web.HTTPException, ApiError):
        raise  # a part over the body size limit (413), a body that did not arrive or decode
    except Exception:  # aiohttp refuses a broken form with several exception types, not all of them public
        # (their text may quote the Content-Type header, so it is not passed on)
        raise invalid("Malformed multipart/form-data body", param="body", code="invalid_multipart") from None
    return body
