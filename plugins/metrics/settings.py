"""The ``[metrics]`` section."""

from __future__ import annotations

from pydantic import Field

from grok2api.api import Section


class MetricsSettings(Section):
    token: str = Field("", description="bearer token a scraper presents at /metrics (empty: admin sessions only)",
                       json_schema_extra={"writeOnly": True})  # a secret: the admin API never shows it back
