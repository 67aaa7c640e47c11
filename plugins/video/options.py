"""What one video is made of, from a chat body's ``video_config`` or a Videos API request.

Every refusal is a 400 naming the field (``video_config.aspect_ratio``, ``size``…), as
the original's were (reference-inventory §4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grok2api.api import invalid

ASPECT_RATIOS = ("16:9", "9:16", "1:1", "2:3", "3:2")
RESOLUTIONS = ("SD", "HD")
#: preset → the suffix of the upstream message (protocol §4.4)
PRESETS = {"fun": "--mode=extremely-crazy", "normal": "--mode=normal",
           "spicy": "--mode=extremely-spicy-or-crazy", "custom": "--mode=custom"}
MIN_LENGTH, MAX_LENGTH = 5, 15
#: the Videos API's sizes → (aspect ratio, resolution)
SIZES = {"720x1280": ("9:16", "SD"), "1280x720": ("16:9", "SD"),
         "1024x1792": ("9:16", "HD"), "1792x1024": ("16:9", "HD")}
DEFAULT_SIZE = "720x1280"
DEFAULT_SECONDS = 6


@dataclass(frozen=True, slots=True)
class VideoOptions:
    aspect_ratio: str = "3:2"
    length: int = DEFAULT_SECONDS
    resolution: str = "SD"
    preset: str = "custom"

    def to_json(self) -> dict[str, Any]:
        return {"aspect_ratio": self.aspect_ratio, "length": self.length, "resolution": self.resolution,
                "preset": self.preset}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VideoOptions:
        return cls(str(data["aspect_ratio"]), int(data["length"]), str(data["resolution"]), str(data["preset"]))


def _choice(value: Any, allowed: tuple[str, ...], param: str, code: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise invalid(f"'{param}' must be one of {', '.join(allowed)}; got {value!r}", param, code)
    return value


def _length(value: Any, param: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_LENGTH <= value <= MAX_LENGTH:
        raise invalid(f"'{param}' must be an integer from {MIN_LENGTH} to {MAX_LENGTH}; got {value!r}", param,
                      "invalid_video_length")
    return value


def parse_video_config(body: dict[str, Any]) -> VideoOptions:
    """``video_config`` of a chat body; absent fields take the original's defaults."""
    config = body.get("video_config")
    if config is None:
        return VideoOptions()
    if not isinstance(config, dict):
        raise invalid("'video_config' must be an object", "video_config", "invalid_type")
    preset = config.get("preset") or "custom"
    return VideoOptions(
        aspect_ratio=_choice(config.get("aspect_ratio", "3:2"), ASPECT_RATIOS, "video_config.aspect_ratio",
                             "invalid_aspect_ratio"),
        length=_length(config.get("video_length", DEFAULT_SECONDS), "video_config.video_length"),
        resolution=_choice(config.get("resolution", "SD"), RESOLUTIONS, "video_config.resolution",
                           "invalid_resolution"),
        preset=_choice(preset, tuple(PRESETS), "video_config.preset", "invalid_preset"),
    )


def parse_job(body: dict[str, Any]) -> tuple[str, str, VideoOptions]:
    """``(prompt, size, options)`` of a ``POST /v1/videos`` body. ``seconds`` may be any
    length Grok makes (5–15; the spec's ``4`` becomes Grok's shortest, 5)."""
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise invalid("'prompt' is required and must be a non-empty string", "prompt", "missing_prompt")
    if len(prompt) > 32000:
        raise invalid("'prompt' is longer than 32000 characters", "prompt", "prompt_too_long")
    size = body.get("size", DEFAULT_SIZE)
    _choice(size, tuple(SIZES), "size", "invalid_size")
    seconds: Any = body.get("seconds", str(DEFAULT_SECONDS))
    if seconds in ("4", 4):
        seconds = MIN_LENGTH
    length = _length(seconds, "seconds")
    aspect_ratio, resolution = SIZES[size]
    return prompt, size, VideoOptions(aspect_ratio, length, resolution, "custom")
