"""Typed registries the hooks fill, and the objects they hold.

The kernel validates every registration where it happens, so a duplicate name or a
missing method stops start-up with a message that names the plugin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from pydantic import BaseModel

if TYPE_CHECKING:
    from grok2api.auth import Identity
    from grok2api.config import Settings
    from grok2api.filters import ResponseFilter
    from grok2api.storage import Storage

Capability = Literal["chat", "image", "image_edit"]
Kind = Literal["chat", "image", "image_edit", "video"]
Tier = Literal["basic", "super"]
CleanupContext = Callable[[web.Application], AsyncIterator[None]]


class RegistrationError(Exception):
    """A plugin registered something the kernel cannot accept."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One public model id and how it maps onto Grok.

    ``cost`` is what one request takes from the account's quota estimate (1 or 4);
    ``tier`` ``super`` means only ``ssoSuper`` accounts may serve it, ``heavy`` that it
    draws on the heavy rate-limit bucket.
    """

    id: str
    display_name: str
    upstream_model: str
    upstream_mode: str
    rate_limit_model: str
    kind: Kind = "chat"
    tier: Tier = "basic"
    cost: int = 1
    heavy: bool = False
    description: str = ""
    owned_by: str = "grok2api"

    def openai(self, created: int) -> dict[str, Any]:
        """The ``Model`` object of OpenAI's schema (plus the original's extra fields)."""
        return {
            "id": self.id,
            "object": "model",
            "created": created,
            "owned_by": self.owned_by,
            "display_name": self.display_name,
            "description": self.description,
        }


@dataclass(slots=True)
class ModelRequest:
    """What a model handler receives: the HTTP request, its parsed body and the caller."""

    request: web.Request
    body: dict[str, Any]
    model: ModelSpec
    identity: Identity

    @property
    def app(self) -> web.Application:
        return self.request.app


Handler = Callable[[ModelRequest], Awaitable[web.StreamResponse]]


@dataclass(slots=True)
class RegisteredModel:
    spec: ModelSpec
    handlers: dict[Capability, Handler]
    plugin: str


class _Registry:
    """Remembers which plugin is registering, for error messages."""

    def __init__(self) -> None:
        self.current_plugin = "?"

    def error(self, message: str) -> RegistrationError:
        return RegistrationError(f"plugin {self.current_plugin!r}: {message}")


class ConfigRegistry(_Registry):
    def __init__(self, reserved: set[str]) -> None:
        super().__init__()
        self.sections: dict[str, type[BaseModel]] = {}
        self.owners: dict[str, str] = {}
        self._reserved = reserved

    def add_section(self, name: str, model: type[BaseModel]) -> None:
        if name in self._reserved or name in self.sections:
            owner = self.owners.get(name, "the kernel")
            raise self.error(f"config section {name!r} is already declared by {owner}")
        self.sections[name] = model
        self.owners[name] = f"plugin {self.current_plugin!r}"


class ModelRegistry(_Registry):
    def __init__(self) -> None:
        super().__init__()
        self.models: dict[str, RegisteredModel] = {}

    def add(self, spec: ModelSpec, *, chat: Handler | None = None, image: Handler | None = None,
            image_edit: Handler | None = None) -> None:
        if spec.id in self.models:
            other = self.models[spec.id].plugin
            raise self.error(f"model {spec.id!r} is already registered by plugin {other!r}")
        handlers = {k: v for k, v in (("chat", chat), ("image", image), ("image_edit", image_edit)) if v is not None}
        if not handlers:
            raise self.error(f"model {spec.id!r} has no handler")
        for cap, handler in handlers.items():
            if not callable(handler):
                raise self.error(f"{cap} handler of {spec.id!r} is not callable")
        self.models[spec.id] = RegisteredModel(spec, handlers, self.current_plugin)  # type: ignore[arg-type]


StorageFactory = Callable[["Settings"], "Storage"]


class StorageRegistry(_Registry):
    def __init__(self) -> None:
        super().__init__()
        self.factories: dict[str, StorageFactory] = {}
        self.owners: dict[str, str] = {}

    def add(self, name: str, factory: StorageFactory) -> None:
        if name in self.factories:
            raise self.error(f"storage {name!r} is already registered by plugin {self.owners[name]!r}")
        self.factories[name] = factory
        self.owners[name] = self.current_plugin


class FilterRegistry(_Registry):
    def __init__(self) -> None:
        super().__init__()
        self.filters: list[ResponseFilter] = []

    def add(self, response_filter: ResponseFilter) -> None:
        if not callable(getattr(response_filter, "open", None)):
            raise self.error(f"filter {response_filter!r} has no open() method")
        if any(f.name == response_filter.name for f in self.filters):
            raise self.error(f"filter {response_filter.name!r} is already registered")
        self.filters.append(response_filter)


class ImageMethodRegistry(_Registry):
    def __init__(self) -> None:
        super().__init__()
        self.methods: dict[str, Any] = {}

    def add(self, name: str, method: Any) -> None:
        if name in self.methods:
            raise self.error(f"image method {name!r} is already registered")
        self.methods[name] = method


@dataclass(slots=True)
class Registries:
    """Everything the plugins registered for one app."""

    config: ConfigRegistry
    models: ModelRegistry = field(default_factory=ModelRegistry)
    storage: StorageRegistry = field(default_factory=StorageRegistry)
    filters: FilterRegistry = field(default_factory=FilterRegistry)
    image_methods: ImageMethodRegistry = field(default_factory=ImageMethodRegistry)
