"""Helpers shared by the upstream tests."""

from __future__ import annotations

from typing import Any

from grok2api.config.settings import Settings

FAST_TIMEOUTS = {"connect_timeout": 1.0, "first_byte_timeout": 2.0, "idle_timeout": 2.0, "timeout": 10.0}


def set_grok(settings: Settings, **values: Any) -> None:
    """Swap the grok section whole, as run-time config changes do."""
    settings.grok = settings.grok.model_validate({**settings.grok.model_dump(), **values})
