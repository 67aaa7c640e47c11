"""The ``[images]`` config section: what the console's upload helper accepts."""

from __future__ import annotations

from pydantic import Field

from grok2api.api import Section


class ImagesSettings(Section):
    upload_max_mb: float = Field(
        5, gt=0, le=32, description="largest picture POST /v1/uploads/image takes (413 above)")
