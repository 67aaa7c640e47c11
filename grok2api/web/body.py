"""Reading request bodies for the dispatcher: JSON objects and multipart forms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import BodyPartReader, web

from grok2api.web.errors import invalid


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """One file part of a multipart body, read whole (the body size limit bounds it)."""

    filename: str
    content_type: str
    data: bytes


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, or a 400 naming ``body``."""
    raw = await request.read()
    if not raw.strip():
        raise invalid("Request body is empty; send a JSON object", param="body", code="empty_body")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"Invalid JSON in request body: {exc}", param="body", code="invalid_json") from None
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object", param="body", code="invalid_json")
    return body


async def read_multipart(request: web.Request) -> dict[str, Any]:
    """Fields as strings; repeated fields and files as lists (``image[]`` and ``image`` alike)."""
    if not request.content_type.startswith("multipart/"):
        raise invalid("Expected a multipart/form-data body", param="body", code="invalid_content_type")
    body: dict[str, Any] = {}
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader) or not part.name:
                continue
            name = part.name.removesuffix("[]")
            if part.filename is not None:
                value: Any = UploadedFile(part.filename, part.headers.get("Content-Type", "application/octet-stream"),
                                          bytes(await part.read()))
                body.setdefault(name, []).append(value)
            else:
                text = await part.text()
                if name in body:
                    existing = body[name]
                    body[name] = (existing if isinstance(existing, list) else [existing]) + [text]
                else:
                    body[name] = text
    except web.HTTPException:
        raise  # a part over the body size limit: 413
    except Exception:  # aiohttp refuses a broken form with several exception types, not all of them public
        raise invalid("Malformed multipart/form-data body", param="body", code="invalid_multipart") from None
    return body
