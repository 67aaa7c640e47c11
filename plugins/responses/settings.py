"""The ``[responses]`` config section."""

from __future__ import annotations

from pydantic import Field

from grok2api.api import Section


class ResponsesSettings(Section):
    store_ttl_hours: float = Field(720, gt=0, description="how long a stored response (store=true) can be "
                                                          "fetched or continued with previous_response_id")
