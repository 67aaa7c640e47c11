"""Fixtures of the admin plugin's tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from argon2 import PasswordHasher

from grok2api.api import SETTINGS, Settings
from grok2api.testing.pytest_plugin import GatewayFactory
from grok2api_plugins.admin import identity
from grok2api_plugins.admin.settings import AdminSettings

from .support import PLUGINS, Admin, Client

_CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id still, with parameters a loaded test machine hashes in milliseconds."""
    monkeypatch.setattr(identity, "_hasher", lambda: _CHEAP)


@pytest.fixture
def admin(gateway: GatewayFactory, make_settings: Callable[..., Settings]) -> Admin:
    """``await admin(app={...}, admin={...})``: a gateway with local storage and the admin plugin.
    Several calls with the same settings are several workers on one database."""
    shared: list[Settings] = []

    async def make(*, admin: dict[str, Any] | None = None, **sections: dict[str, Any]) -> Client:
        settings = shared[0] if shared and not sections else make_settings(**sections)
        shared[:] = [settings]
        client: Client = await gateway(*PLUGINS, settings=settings)
        if admin:  # plugin sections exist once the app is built
            client.app[SETTINGS].admin = AdminSettings.model_validate(  # type: ignore[attr-defined]
                {**client.app[SETTINGS].admin.model_dump(), **admin})  # type: ignore[attr-defined]
        return client

    return make
