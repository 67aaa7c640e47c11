"""Validating the bodies of ``/v1/images/generations`` and ``/v1/images/edits``.

Everything is checked before any quota is charged or any upstream work starts; each
refusal is a 400 naming its field. Fields OpenAI has and Grok cannot honour
(``quality``, ``style``, ``mask``, …) are accepted and ignored, as the original did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from grok2api.api import UploadedFile, invalid

Format = Literal["url", "base64", "b64_json"]
FORMATS: tuple[Format, ...] = ("url", "base64", "b64_json")
MAX_N = 10
MAX_STREAM_N = 2
MAX_CONCURRENCY = 3
MAX_IMAGES = 16
MAX_IMAGE_BYTES = 50 * 1024 * 1024
DEFAULT_RATIO = "2:3"

#: size → aspect ratio (reference-inventory §3.3); the ratios themselves pass through
ASPECT_RATIOS: dict[str, str] = {
    **{ratio: ratio for ratio in ("16:9", "9:16", "1:1", "2:3", "3:2")},
    **dict.fromkeys(("1024x1024", "512x512"), "1:1"),
    **dict.fromkeys(("1024x576", "1280x720", "1536x864"), "16:9"),
    **dict.fromkeys(("576x1024", "720x1280", "864x1536"), "9:16"),
    **dict.fromkeys(("1024x1536", "1024x1792", "512x768", "768x1024"), "2:3"),
    **dict.fromkeys(("1536x1024", "1792x1024", "768x512", "1024x768"), "3:2"),
}


def aspect_ratio(size: Any) -> str:
    """The aspect ratio a ``size`` stands for; anything unknown is 2:3, as in the original."""
    return ASPECT_RATIOS.get(str(size or "").strip().lower(), DEFAULT_RATIO)


def sniff(data: bytes) -> str | None:
    """The picture type the bytes themselves say (never the file name or the part's header)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


@dataclass(frozen=True, slots=True)
class Ask:
    """A validated request of either endpoint."""

    prompt: str
    n: int
    aspect_ratio: str
    response_format: Format
    stream: bool
    concurrency: int
    images: tuple[UploadedFile, ...] = ()


def _int(body: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = body.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, str) and value.strip().lstrip("-").isdecimal() and value.strip().isascii():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid(f"{name} must be an integer from {low} to {high}", name, "invalid_type")
    if not low <= value <= high:
        raise invalid(f"{name} must be from {low} to {high}; got {value}", name, "invalid_value")
    return value


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", ""):
        return value.strip().lower() in ("true", "1")
    raise invalid(f"{name} must be true or false", name, "invalid_type")


def _text(value: Any) -> str:
    """A text field (a repeated multipart field counts once: its last value)."""
    if isinstance(value, list):
        value = value[-1] if value else None
    return value if isinstance(value, str) else ""


def parse(body: dict[str, Any], *, default_format: str, edit: bool) -> Ask:
    """The request as the endpoint serves it; raises a 400 :class:`ApiError` naming the field."""
    if "prompt" in body and not isinstance(body["prompt"], (str, list)):
        raise invalid("prompt must be a string", "prompt", "invalid_type")
    prompt = _text(body.get("prompt")).strip()
    if not prompt:
        raise invalid("prompt is required and must not be blank", "prompt", "empty_prompt")
    n = _int(body, "n", 1, 1, MAX_N)
    stream = _bool(body, "stream")
    if stream and n > MAX_STREAM_N:
        raise invalid(f"Streaming makes 1 or 2 images; got n={n}", "n", "invalid_stream_n")
    raw_format = body.get("response_format")
    if raw_format is not None and not isinstance(raw_format, (str, list)):
        raise invalid(f"response_format must be one of {', '.join(FORMATS)}", "response_format", "invalid_type")
    fmt = (_text(raw_format).strip() or default_format).lower()
    if fmt not in FORMATS:
        raise invalid(f"response_format must be one of {', '.join(FORMATS)}; got {raw_format!r}",
                      "response_format", "invalid_response_format")
    concurrency = _int(body, "concurrency", 1, 1, MAX_CONCURRENCY)
    images = _images(body) if edit else ()
    return Ask(prompt, n, aspect_ratio(body.get("size")), fmt, stream, concurrency, images)


def _images(body: dict[str, Any]) -> tuple[UploadedFile, ...]:
    """``image`` and ``image[]`` (the kernel merges both): 1 to 16 PNG, JPEG or WebP files of at most 50 MB."""
    files = body.get("image")
    if isinstance(files, str) or (isinstance(files, list) and any(not isinstance(f, UploadedFile) for f in files)):
        raise invalid("image must be sent as a file part of a multipart form", "image", "invalid_image")
    files = list(files or [])
    if not files:
        raise invalid("image is required: 1 to 16 files", "image", "missing_image")
    if len(files) > MAX_IMAGES:
        raise invalid(f"At most {MAX_IMAGES} images per edit; got {len(files)}", "image", "invalid_image_count")
    checked = []
    for position, file in enumerate(files):
        label = f"image {position + 1} ({file.filename!r})"
        if not file.data:
            raise invalid(f"{label} is empty", "image", "empty_file")
        if len(file.data) > MAX_IMAGE_BYTES:
            raise invalid(f"{label} is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB", "image", "file_too_large")
        mime = sniff(file.data)
        if mime is None:
            raise invalid(f"{label} is not a PNG, JPEG or WebP picture", "image", "invalid_image_type")
        checked.append(UploadedFile(file.filename or f"image-{position + 1}", mime, file.data))
    return tuple(checked)

