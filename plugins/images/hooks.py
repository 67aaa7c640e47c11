"""Hook implementations only: the image models, the two image methods, ``GET /v1/images/method``,
the console's upload helper and its continuous-generation socket, the ``[images]`` section."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grok2api import hookimpl

if TYPE_CHECKING:
    from aiohttp import web

    from grok2api.api import ConfigRegistry, ImageMethodRegistry, ModelRegistry


@hookimpl
def grok2api_add_config(config: ConfigRegistry) -> None:
    from grok2api_plugins.images.settings import ImagesSettings

    config.add_section("images", ImagesSettings)


@hookimpl
def grok2api_register_models(models: ModelRegistry) -> None:
    from grok2api_plugins.images.catalog import EDIT, GENERATE
    from grok2api_plugins.images.handler import edits, generations

    models.add(GENERATE, image=generations)
    models.add(EDIT, image_edit=edits)


@hookimpl
def grok2api_register_image_methods(methods: ImageMethodRegistry) -> None:
    from grok2api_plugins.images.imagine import ImagineMethod
    from grok2api_plugins.images.legacy import LegacyMethod

    methods.add(LegacyMethod())
    methods.add(ImagineMethod())


@hookimpl
def grok2api_add_routes(app: web.Application) -> list[web.AbstractRouteDef]:
    from aiohttp import web

    from grok2api_plugins.images.continuous import PATH, imagine_socket
    from grok2api_plugins.images.handler import image_method
    from grok2api_plugins.images.uploads import upload_image, upload_rules

    return [web.get("/v1/images/method", image_method), web.post("/v1/uploads/image", upload_image),
            web.get("/v1/uploads/image", upload_rules), web.get(PATH, imagine_socket)]
