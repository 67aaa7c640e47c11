"""Run-time config changes: validated by the section models, stored per section, shared by workers.

Precedence, lowest first: defaults, ``config.toml``, changes stored at run time (the
admin console), environment. A stored change reaches the other workers through the
change feed (:func:`reload_section`).
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel

from grok2api.config.settings import ConfigError, Settings, apply_update, environment_config
from grok2api.logs.logger import logger
from grok2api.storage import NS_CONFIG, Storage


def _with_environment(update: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    env = environment_config(os.environ)
    return {name: {**values, **env.get(name, {})} for name, values in update.items()}


def _apply_stored(settings: Settings, name: str, values: dict[str, Any],
                  sections: dict[str, type[BaseModel]]) -> None:
    """A stored section that no longer validates is logged and skipped, never fatal."""
    try:
        apply_update(settings, _with_environment({name: values}), sections)
    except ConfigError as exc:
        logger.error("stored config section {} ignored: {}", name, exc)


async def load_stored(storage: Storage, settings: Settings, sections: dict[str, type[BaseModel]]) -> None:
    """Apply every stored section."""
    for name, values in (await storage.list(NS_CONFIG)).items():
        _apply_stored(settings, name, values, sections)


async def save(storage: Storage, settings: Settings, update: dict[str, dict[str, Any]],
               sections: dict[str, type[BaseModel]]) -> None:
    """Validate, apply to this process, then store each changed section's overrides."""
    apply_update(settings, _with_environment(update), sections)
    for name, values in update.items():
        stored = await storage.get(NS_CONFIG, name) or {}
        await storage.put(NS_CONFIG, name, {**stored, **values})


async def reload_section(storage: Storage, settings: Settings, name: str,
                         sections: dict[str, type[BaseModel]]) -> None:
    """Another worker changed section ``name``: re-read it."""
    values = await storage.get(NS_CONFIG, name)
    if values is not None:
        _apply_stored(settings, name, values, sections)
