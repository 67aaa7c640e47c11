"""Typed registries the hooks fill, and the objects they hold.

The kernel validates every registration where it happens, so a duplicate name or a
missing method stops start-up with a message that names the plugin. Which plugin is
registering is known from the hook implementation on the call stack (see
:class:`Attribution`), so hooks run through pluggy's own calling, wrappers included.
"""

from __future__ import annotations

import argparse
import inspect
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:  # at run time this module imports no aiohttp or pydantic: ``grok2api --help`` needs it
    from aiohttp import web
    from pydantic import BaseModel

    from grok2api.config.settings import Settings
    from grok2api.keys.service import Identity
    from grok2api.plugin.filters import ResponseFilter
    from grok2api.storage import Storage
    from grok2api.web.body import UploadedFile
    from grok2api.web.errors import ApiError

Kind = Literal["chat", "image", "image_edit", "video"]
Tier = Literal["basic", "super"]
CleanupContext = Callable[["web.Application"], AsyncIterator[None]]


class RegistrationError(Exception):
    """A plugin registered something the kernel cannot accept."""


class Attribution:
    """Which plugin a registration comes from: the hook implementation on the call stack.

    The hook facade fills :attr:`plugins` (code object of each implementation → plugin
    name) before it calls a hook; a registry asks :meth:`current` when it is called.
    """

    def __init__(self) -> None:
        self.plugins: dict[CodeType, str] = {}

    def current(self) -> str:
        frame = inspect.currentframe()
        while frame is not None:
            name = self.plugins.get(frame.f_code)
            if name is not None:
                return name
            frame = frame.f_back
        return "?"


class _Registry:
    """Knows which plugin is registering, for error messages."""

    def __init__(self, attribution: Attribution | None = None) -> None:
        self.attribution = attribution or Attribution()

    @property
    def current_plugin(self) -> str:
        return self.attribution.current()

    def error(self, message: str) -> RegistrationError:
        return RegistrationError(f"plugin {self.current_plugin!r}: {message}")


# -- config ---------------------------------------------------------------------------


class ConfigRegistry(_Registry):
    """Plugin config sections; ``moved`` maps the original product's key names onto them."""

    def __init__(self, reserved: set[str], attribution: Attribution | None = None) -> None:
        super().__init__(attribution)
        self.sections: dict[str, type[BaseModel]] = {}
        self.owners: dict[str, str] = {}
        self.moved: dict[str, dict[str, str]] = {}
        self._reserved = reserved

    def add_section(self, name: str, model: type[BaseModel], *, moved: Mapping[str, str] | None = None) -> None:
        """Declare ``[name]``. ``moved`` maps ``"section.key"`` of a kernel section (the
        original's name, such as ``grok.video_poster_preview``) to a field of ``model``,
        so files written for the original keep working."""
        if name in self._reserved or name in self.sections:
            owner = self.owners.get(name, "the kernel")
            raise self.error(f"config section {name!r} is already declared by {owner}")
        for dotted, field_name in (moved or {}).items():
            if field_name not in model.model_fields:
                raise self.error(f"moved key {dotted!r} names {field_name!r}, which [{name}] does not have")
        self.sections[name] = model
        self.owners[name] = f"plugin {self.current_plugin!r}"
        self.moved[name] = dict(moved or {})


# -- models and capabilities ---------------------------------------------------------------


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
    capability: str = ""

    @property
    def app(self) -> web.Application:
        return self.request.app


Handler = Callable[[ModelRequest], Awaitable["web.StreamResponse"]]
BodyReader = Callable[["web.Request"], Awaitable[dict[str, Any]]]
ErrorRenderer = Callable[["ApiError"], "web.StreamResponse"]


@dataclass(frozen=True, slots=True)
class Capability:
    """An endpoint the kernel dispatches by ``model``: a route whose handler is the one
    registered for the request's model under this capability's name.

    ``read_body`` parses the request (JSON by default); ``render_error``, when set, turns
    every error of this route (auth included) into the API's own error shape.
    """

    name: str
    method: str
    path: str
    read_body: BodyReader | None = None
    render_error: ErrorRenderer | None = None
    description: str = ""


_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MODEL_ID = re.compile(r"^[!-~]{1,128}$")


class CapabilityRegistry(_Registry):
    def __init__(self, attribution: Attribution | None = None) -> None:
        super().__init__(attribution)
        self.capabilities: dict[str, Capability] = {}
        self.owners: dict[str, str] = {}

    def add(self, capability: Capability) -> None:
        if not _NAME.match(capability.name):
            raise self.error(f"capability name {capability.name!r} must be lower-case letters, digits and _")
        if capability.name in self.capabilities:
            raise self.error(f"capability {capability.name!r} is already registered by "
                             f"{self.owners[capability.name]}")
        if not capability.path.startswith("/v1/"):
            raise self.error(f"capability {capability.name!r}: its path must be under /v1/ (API-key auth)")
        clash = next((c for c in self.capabilities.values()
                      if (c.method, c.path) == (capability.method, capability.path)), None)
        if clash is not None:
            raise self.error(f"capability {capability.name!r}: {capability.method} {capability.path} is "
                             f"already capability {clash.name!r}")
        self.capabilities[capability.name] = capability
        self.owners[capability.name] = f"plugin {self.current_plugin!r}"


@dataclass(slots=True)
class RegisteredModel:
    spec: ModelSpec
    handlers: dict[str, Handler]
    plugin: str


class ModelRegistry(_Registry):
    def __init__(self, attribution: Attribution | None = None) -> None:
        super().__init__(attribution)
        self.models: dict[str, RegisteredModel] = {}

    def add(self, spec: ModelSpec, **handlers: Handler) -> None:
        """``models.add(spec, chat=handler, video=other)``: one handler per capability name."""
        if not _MODEL_ID.match(spec.id):
            raise self.error(f"model id {spec.id!r} must be 1-128 printable characters without spaces")
        if spec.id in self.models:
            other = self.models[spec.id].plugin
            raise self.error(f"model {spec.id!r} is already registered by plugin {other!r}")
        if not handlers:
            raise self.error(f"model {spec.id!r} has no handler")
        for name, handler in handlers.items():
            if not callable(handler):
                raise self.error(f"{name} handler of {spec.id!r} is not callable")
        self.models[spec.id] = RegisteredModel(spec, dict(handlers), self.current_plugin)

    def add_handler(self, model_id: str, capability: str, handler: Handler) -> None:
        """Serve one more capability on a model another plugin registered (an API that
        translates onto that model's own pipeline). Call it from a ``trylast``
        implementation, so the model is there; a model that has a handler for
        ``capability`` already, or no model by that id, stops start-up."""
        model = self.models.get(model_id)
        if model is None:
            raise self.error(f"cannot add a {capability} handler to {model_id!r}: no plugin registered that model")
        if capability in model.handlers:
            raise self.error(f"model {model_id!r} already has a {capability} handler")
        if not callable(handler):
            raise self.error(f"{capability} handler of {model_id!r} is not callable")
        model.handlers[capability] = handler

    def check(self, capabilities: Mapping[str, Capability]) -> None:
        """After every plugin registered: each handler must name a registered capability."""
        for model in self.models.values():
            unknown = sorted(set(model.handlers) - set(capabilities))
            if unknown:
                raise RegistrationError(
                    f"plugin {model.plugin!r}: model {model.spec.id!r} has handlers for {', '.join(unknown)}, "
                    f"which no plugin registers as a capability (known: {', '.join(sorted(capabilities))})")


# -- storage, filters ----------------------------------------------------------------------

StorageFactory = Callable[["Settings"], "Storage"]


class StorageRegistry(_Registry):
    def __init__(self, attribution: Attribution | None = None) -> None:
        super().__init__(attribution)
        self.factories: dict[str, StorageFactory] = {}
        self.owners: dict[str, str] = {}

    def add(self, name: str, factory: StorageFactory) -> None:
        if name in self.factories:
            raise self.error(f"storage {name!r} is already registered by plugin {self.owners[name]!r}")
        self.factories[name] = factory
        self.owners[name] = self.current_plugin


class FilterRegistry(_Registry):
    def __init__(self, attribution: Attribution | None = None) -> None:
        super().__init__(attribution)
        self.filters: list[ResponseFilter] = []

    def add(self, response_filter: ResponseFilter) -> None:
        if not callable(getattr(response_filter, "open", None)):
            raise self.error(f"filter {response_filter!r} has no open() method")
        if any(f.name == response_filter.name for f in self.filters):
            raise self.error(f"filter {response_filter.name!r} is already registered")
        self.filters.append(response_filter)


# -- image methods ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """One generation as a method receives it, already validated by the endpoint.

    ``images`` are the source pictures of an edit (empty for a generation); a method
    uploads them with the account it leases, as Grok only lets their owner use them.
    """

    model: ModelSpec
    prompt: str
    n: int
    aspect_ratio: str
    stream: bool = False
    concurrency: int = 1
    images: tuple[UploadedFile, ...] = ()


@dataclass(frozen=True, slots=True)
class ImagePartial:
    """Picture ``index`` is ``percent`` done; ``preview`` is a partial image when the upstream sends one."""

    index: int
    percent: int
    preview: bytes | None = None


@dataclass(frozen=True, slots=True)
class ImageReady:
    """Picture ``index`` is finished: its bytes and media type.

    ``name`` is its file name in the media cache (``cache_name`` of its upstream URL);
    a method that already put the file there (a download) saves the endpoint a write.
    """

    index: int
    data: bytes
    mime: str
    name: str = ""


ImageEvent = ImagePartial | ImageReady


@runtime_checkable
class ImageMethod(Protocol):
    """One way of making pictures on Grok (``legacy`` chat calls, the imagine WebSocket, …).

    ``generate`` yields progress and finished pictures, at most ``request.n`` of them,
    and raises :class:`~grok2api.upstream.UpstreamError` when the upstream fails, so
    the endpoint can answer honestly. Accounts come from ``app[POOL]``.
    """

    name: str

    def generate(self, app: web.Application, request: ImageRequest) -> AsyncIterator[ImageEvent]: ...


class ImageMethodRegistry(_Registry):
    def __init__(self, attribution: Attribution | None = None) -> None:
        super().__init__(attribution)
        self.methods: dict[str, ImageMethod] = {}

    def add(self, method: ImageMethod) -> None:
        if not isinstance(method, ImageMethod):
            raise self.error(f"image method {method!r} needs a name and a generate(app, request) method")
        from grok2api.config.settings import normalize_image_method

        name = normalize_image_method(method.name)
        if name != method.name or not _NAME.match(name):
            raise self.error(f"image method name {method.name!r} must be lower-case and not an alias")
        if name in self.methods:
            raise self.error(f"image method {name!r} is already registered")
        self.methods[name] = method

    def get(self, name: str) -> ImageMethod:
        """The method ``grok.image_generation_method`` names (checked at start-up)."""
        from grok2api.config.settings import normalize_image_method

        return self.methods[normalize_image_method(name)]


# -- commands ---------------------------------------------------------------------------------

CommandRunner = Callable[[argparse.Namespace, "Settings"], int]
AppCommandRunner = Callable[[argparse.Namespace, "web.Application"], Awaitable[int]]


@dataclass(frozen=True, slots=True)
class Command:
    """A ``grok2api <name>`` subcommand.

    ``arguments`` adds its options to the argparse parser it is given. Exactly one of
    ``run`` (given the settings; builds what it needs) and ``run_app`` (given the
    started app: storage, keys, pool and plugins, no HTTP listener) does the work and
    returns the exit status.
    """

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    run: CommandRunner | None = None
    run_app: AppCommandRunner | None = None


class CommandRegistry(_Registry):
    def __init__(self, reserved: Iterable[str] = (), attribution: Attribution | None = None) -> None:
        super().__init__(attribution)
        self.commands: dict[str, Command] = {}
        self.owners: dict[str, str] = {}
        self._reserved = set(reserved)

    def add(self, command: Command) -> None:
        if (command.run is None) == (command.run_app is None):
            raise self.error(f"command {command.name!r} needs exactly one of run and run_app")
        if not re.match(r"^[a-z][a-z0-9-]*$", command.name):
            raise self.error(f"command name {command.name!r} must be lower-case letters, digits and -")
        if command.name in self.commands or command.name in self._reserved:
            owner = self.owners.get(command.name, "the kernel")
            raise self.error(f"command {command.name!r} is already registered by {owner}")
        self.commands[command.name] = command
        self.owners[command.name] = f"plugin {self.current_plugin!r}"


# -- request observers ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One finished HTTP request, as observers see it (never its body, headers or key).

    ``route`` is the matched route's pattern (``/v1/files/image/{name}``), so metrics stay
    low-cardinality; ``first_byte_ms`` is when the response head left: for a stream with
    its first chunk, for any other answer when the handler returned it. ``key_id`` is a
    managed key's id (its hash, as the admin API lists it), never the key; the token
    counts are what the model's plugin counted for ``usage`` (None when it counted none).
    """

    method: str
    path: str
    route: str | None
    status: int
    duration_ms: float
    first_byte_ms: float
    request_id: str
    model: str | None
    capability: str | None
    key_name: str | None
    error_code: str | None
    key_id: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@runtime_checkable
class RequestObserver(Protocol):
    """Sees every request once it has finished (streams included), never per chunk.

    ``request_finished`` runs in the request's task after the response ended: it must be
    quick and must not await (queue the work); an exception is logged and ignored.
    """

    name: str

    def request_finished(self, app: web.Application, record: RequestRecord) -> None: ...


class ObserverRegistry(_Registry):
    def __init__(self, attribution: Attribution | None = None) -> None:
        super().__init__(attribution)
        self.observers: list[RequestObserver] = []

    def add(self, observer: RequestObserver) -> None:
        if not isinstance(observer, RequestObserver):
            raise self.error(f"observer {observer!r} needs a name and request_finished(app, record)")
        if any(o.name == observer.name for o in self.observers):
            raise self.error(f"observer {observer.name!r} is already registered")
        self.observers.append(observer)


# -- admin console pages ----------------------------------------------------------------------

PageHandler = Callable[["web.Request"], Awaitable["web.StreamResponse"]]


@dataclass(frozen=True, slots=True)
class AdminPage:
    """A page of the admin console and, when ``title`` is set, its navigation entry.

    Pages need an admin session unless ``public`` (a login page, a user-facing chat page);
    a browser without one is sent to the page registered with ``login=True``.
    ``order`` sorts the navigation (lower first).
    """

    path: str
    handler: PageHandler
    title: str = ""
    order: int = 100
    public: bool = False
    login: bool = False


@dataclass(frozen=True, slots=True)
class StaticFiles:
    """A folder of a plugin's static files, served read-only under ``/static/<name>/``."""

    name: str
    directory: Path


class AdminPageRegistry(_Registry):
    def __init__(self, attribution: Attribution | None = None) -> None:
        super().__init__(attribution)
        self.pages: dict[str, AdminPage] = {}
        self.static: dict[str, StaticFiles] = {}
        self.owners: dict[str, str] = {}

    def add(self, page: AdminPage) -> None:
        if not page.path.startswith("/") or page.path.startswith(("/v1/", "/api/", "/static/")):
            raise self.error(f"page path {page.path!r} must start with / and not be under /v1, /api or /static")
        if page.path in self.pages:
            raise self.error(f"page {page.path!r} is already registered by plugin {self.owners[page.path]!r}")
        if page.login and any(p.login for p in self.pages.values()):
            raise self.error("a login page is already registered")
        self.pages[page.path] = page
        self.owners[page.path] = self.current_plugin

    def add_static(self, files: StaticFiles) -> None:
        if not _NAME.match(files.name):
            raise self.error(f"static folder name {files.name!r} must be lower-case letters, digits and _")
        if files.name in self.static:
            raise self.error(f"static folder {files.name!r} is already registered")
        if not files.directory.is_dir():
            raise self.error(f"static folder {files.directory} does not exist")
        self.static[files.name] = files

    @property
    def login_path(self) -> str | None:
        return next((p.path for p in self.pages.values() if p.login), None)

    def navigation(self) -> list[AdminPage]:
        """Pages with a title, in navigation order."""
        return sorted((p for p in self.pages.values() if p.title), key=lambda p: (p.order, p.path))


# -- everything ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Registries:
    """Everything the plugins registered for one app."""

    config: ConfigRegistry
    attribution: Attribution = field(default_factory=Attribution)
    capabilities: CapabilityRegistry = field(init=False)
    models: ModelRegistry = field(init=False)
    storage: StorageRegistry = field(init=False)
    filters: FilterRegistry = field(init=False)
    image_methods: ImageMethodRegistry = field(init=False)
    observers: ObserverRegistry = field(init=False)
    admin_pages: AdminPageRegistry = field(init=False)

    def __post_init__(self) -> None:
        self.config.attribution = self.attribution
        self.capabilities = CapabilityRegistry(self.attribution)
        self.models = ModelRegistry(self.attribution)
        self.storage = StorageRegistry(self.attribution)
        self.filters = FilterRegistry(self.attribution)
        self.image_methods = ImageMethodRegistry(self.attribution)
        self.observers = ObserverRegistry(self.attribution)
        self.admin_pages = AdminPageRegistry(self.attribution)
