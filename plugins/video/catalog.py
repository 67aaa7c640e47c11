"""The video model of the original catalog (reference-inventory §11)."""

from __future__ import annotations

from grok2api.api import ModelSpec

VIDEO = ModelSpec(
    id="grok-imagine-1.0-video", display_name="Grok Video", upstream_model="grok-3", upstream_mode="MODEL_MODE_FAST",
    rate_limit_model="grok-3", kind="video", cost=4,
    description="Video generation: POST /v1/chat/completions with video_config, or POST /v1/videos")
