"""A plugin that uses every hook of the contract, importing only the public plugin API."""

from __future__ import annotations

import argparse
import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
from aiohttp import web

from grok2api.api import (
    REGISTRIES,
    SETTINGS,
    AdminPage,
    AdminPageRegistry,
    ApiError,
    Capability,
    CapabilityRegistry,
    Command,
    CommandRegistry,
    ImageMethodRegistry,
    ImagePartial,
    ImageReady,
    ImageRequest,
    ModelRegistry,
    ModelRequest,
    ModelSpec,
    ObserverRegistry,
    RequestRecord,
    Settings,
    StaticFiles,
    hookimpl,
)

STATIC = Path(__file__).parent / "contract_static"
TRANSLATOR = ModelSpec(id="translator-1", display_name="Translator", upstream_model="", upstream_mode="",
                       rate_limit_model="")
PAINTER = ModelSpec(id="painter-1", display_name="Painter", upstream_model="", upstream_mode="",
                    rate_limit_model="", kind="image")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def render_error(error: ApiError) -> web.Response:
    """This API's own error shape (Anthropic-like), not OpenAI's."""
    body = {"type": "error", "error": {"type": error.type, "message": error.message}}
    return web.Response(status=error.status, body=orjson.dumps(body), content_type="application/json")


async def translate(req: ModelRequest) -> web.Response:
    text = req.body.get("text")
    if not isinstance(text, str):
        raise ApiError(400, "'text' must be a string", param="text")
    return web.json_response({"model": req.model.id, "capability": req.capability, "text": text[::-1]})


class Flux:
    """A third image method: one grey square per picture, with a progress event first."""

    name = "flux"

    async def generate(self, app: web.Application, request: ImageRequest) -> AsyncIterator[ImagePartial | ImageReady]:
        for index in range(request.n):
            yield ImagePartial(index, 50)
            yield ImageReady(index, PNG, "image/png")


async def paint(req: ModelRequest) -> web.Response:
    """Generates with whichever method ``grok.image_generation_method`` picked."""
    settings = req.app[SETTINGS]
    method = req.app[REGISTRIES].image_methods.get(settings.grok.image_generation_method)
    request = ImageRequest(model=req.model, prompt=str(req.body.get("prompt", "")), n=int(req.body.get("n", 1)),
                           aspect_ratio="1:1")
    data, progress = [], 0
    async for event in method.generate(req.app, request):
        if isinstance(event, ImageReady):
            data.append({"b64_json": base64.b64encode(event.data).decode()})
        else:
            progress += 1
    return web.json_response({"created": int(time.time()), "data": data, "method": method.name,
                              "progress_events": progress})


async def edit(req: ModelRequest) -> web.Response:
    """Echoes the multipart form the kernel read: fields as text, files as name, type and size."""
    files = [{"filename": f.filename, "content_type": f.content_type, "size": len(f.data)}
             for f in req.body.get("image", [])]
    return web.json_response({"prompt": req.body.get("prompt"), "files": files})


class Recorder:
    """A request observer that keeps what it saw."""

    name = "recorder"

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def request_finished(self, app: web.Application, record: RequestRecord) -> None:
        self.records.append(record)


class Broken:
    name = "broken"

    def request_finished(self, app: web.Application, record: RequestRecord) -> None:
        raise RuntimeError("observer bug")


async def contract_page(request: web.Request) -> web.Response:
    return web.Response(text="<h1>Contract</h1>", content_type="text/html")


async def login_page(request: web.Request) -> web.Response:
    return web.Response(text="<h1>Log in</h1>", content_type="text/html")


def hello_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", default="world")


def hello(args: argparse.Namespace, settings: Settings) -> int:
    print(f"hello {args.name} from {settings.server.storage_type}")
    return 0


async def count_models(args: argparse.Namespace, app: web.Application) -> int:
    print(f"{len(app[REGISTRIES].models.models)} models")
    return 3


class ContractPlugin:
    plugin_name = "contract"

    def __init__(self) -> None:
        self.recorder = Recorder()

    @hookimpl
    def grok2api_register_capabilities(self, capabilities: CapabilityRegistry) -> None:
        capabilities.add(Capability("translate", "POST", "/v1/translations", render_error=render_error))

    @hookimpl
    def grok2api_register_models(self, models: ModelRegistry) -> None:
        models.add(TRANSLATOR, translate=translate)
        models.add(PAINTER, image=paint, image_edit=edit)

    @hookimpl
    def grok2api_register_image_methods(self, methods: ImageMethodRegistry) -> None:
        methods.add(Flux())

    @hookimpl
    def grok2api_register_observers(self, observers: ObserverRegistry) -> None:
        observers.add(Broken())
        observers.add(self.recorder)

    @hookimpl
    def grok2api_register_admin_pages(self, pages: AdminPageRegistry) -> None:
        pages.add(AdminPage("/admin/contract", contract_page, title="Contract", order=5))
        pages.add(AdminPage("/contract-login", login_page, public=True, login=True))
        pages.add_static(StaticFiles("contract", STATIC))

    @hookimpl
    def grok2api_register_commands(self, commands: CommandRegistry) -> None:
        commands.add(Command("contract-hello", "say hello", arguments=hello_arguments, run=hello))
        commands.add(Command("contract-models", "count models", run_app=count_models))
