"""The two image models of the original catalog (reference-inventory §11)."""

from __future__ import annotations

from grok2api.api import ModelSpec

GENERATE = ModelSpec(
    id="grok-imagine-1.0", display_name="Grok Image", upstream_model="grok-3", upstream_mode="MODEL_MODE_FAST",
    rate_limit_model="grok-3", kind="image", cost=4,
    description="Image generation: POST /v1/images/generations")
EDIT = ModelSpec(
    id="grok-imagine-1.0-edit", display_name="Grok Image Edit", upstream_model="imagine-image-edit",
    upstream_mode="MODEL_MODE_FAST", rate_limit_model="grok-3", kind="image_edit", cost=4,
    description="Image editing: POST /v1/images/edits (multipart)")
