"""Small plugins the kernel tests register by object: a model, a crashing route, a config section."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web
from pydantic import BaseModel

from grok2api import hookimpl
from grok2api.api import (
    ConfigRegistry,
    ImageEvent,
    ImageMethodRegistry,
    ImageReady,
    ImageRequest,
    ModelRegistry,
    ModelRequest,
    ModelSpec,
)

ECHO = ModelSpec(id="echo-1", display_name="Echo", upstream_model="", upstream_mode="", rate_limit_model="")


async def echo(req: ModelRequest) -> web.Response:
    return web.json_response({"model": req.model.id, "kind": req.identity.kind, "body": req.body})


class EchoPlugin:
    plugin_name = "echo"

    @hookimpl
    def grok2api_register_models(self, models: ModelRegistry) -> None:
        models.add(ECHO, chat=echo)


class TwinPlugin:
    """Registers the same model id as :class:`EchoPlugin`."""

    plugin_name = "twin"

    @hookimpl
    def grok2api_register_models(self, models: ModelRegistry) -> None:
        models.add(ECHO, chat=echo)


class CrashPlugin:
    plugin_name = "crash"

    @hookimpl
    def grok2api_add_routes(self, app: web.Application) -> list[web.RouteDef]:
        async def boom(request: web.Request) -> web.Response:
            raise RuntimeError("internal detail: password=hunter2")

        return [web.get("/v1/boom", boom), web.get("/api/v1/admin/boom", boom)]


class GreetingConfig(BaseModel):
    greeting: str = "hi"
    times: int = 1


class ConfiguredPlugin:
    plugin_name = "configured"

    @hookimpl
    def grok2api_add_config(self, config: ConfigRegistry) -> None:
        config.add_section("greeter", GreetingConfig)


class ImageMethodPlugin:
    """Offers only the experimental image method."""

    plugin_name = "imagine"

    @hookimpl
    def grok2api_register_image_methods(self, methods: ImageMethodRegistry) -> None:
        methods.add(Imagine())


class Imagine:
    name = "imagine_ws_experimental"

    async def generate(self, app: web.Application, request: ImageRequest) -> AsyncIterator[ImageEvent]:
        yield ImageReady(0, b"", "image/png")
