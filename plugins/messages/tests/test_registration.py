"""The kernel's ``models.add_handler``, which lets the messages and responses plugins serve the
chat plugin's models, and the app as ``grok2api serve`` builds it from the installed entry points."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiohttp import web

from grok2api.api import REGISTRIES, ModelRegistry, ModelRequest, ModelSpec, RegistrationError, Settings, create_app

SPEC = ModelSpec(id="m-1", display_name="M", upstream_model="m", upstream_mode="x", rate_limit_model="m",
                 kind="chat", tier="basic", cost=1)


async def handler(req: ModelRequest) -> web.StreamResponse:  # a stand-in: registration only checks it is callable
    return web.Response()


def test_add_handler_serves_one_more_capability_on_a_registered_model() -> None:
    models = ModelRegistry()
    models.add(SPEC, chat=handler)
    models.add_handler("m-1", "messages", handler)
    assert set(models.models["m-1"].handlers) == {"chat", "messages"}
    with pytest.raises(RegistrationError, match="already has a messages handler"):
        models.add_handler("m-1", "messages", handler)
    with pytest.raises(RegistrationError, match="no plugin registered that model"):
        models.add_handler("m-2", "messages", handler)
    with pytest.raises(RegistrationError, match="not callable"):
        models.add_handler("m-1", "other", "nope")  # type: ignore[arg-type]


SURFACES = {"chat", "messages", "messages_count_tokens", "responses"}


def test_the_installed_plugins_serve_every_surface_on_every_chat_model(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings())
    registries = app[REGISTRIES]
    assert SURFACES <= set(registries.capabilities.capabilities)
    chat_models = [m for m in registries.models.models.values() if m.plugin == "chat"]
    assert chat_models and all(SURFACES <= set(m.handlers) for m in chat_models)


def test_without_the_chat_plugin_the_surfaces_serve_nothing(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(plugins={"disabled": ["chat"]}))
    assert not any((SURFACES - {"chat"}) & set(m.handlers) for m in app[REGISTRIES].models.models.values())
