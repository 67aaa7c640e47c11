"""Hook implementations only: the video model on chat and on the ``video`` capability
(``POST /v1/videos``), the jobs' routes, the ``[video]`` section and the start-up context."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grok2api import hookimpl

if TYPE_CHECKING:
    from aiohttp import web

    from grok2api.api import CapabilityRegistry, CleanupContext, ConfigRegistry, ModelRegistry, Settings


@hookimpl
def grok2api_add_config(config: ConfigRegistry) -> None:
    from grok2api_plugins.video.settings import VideoSettings

    config.add_section("video", VideoSettings, moved={"grok.video_poster_preview": "poster_preview",
                                                      "performance.media_max_concurrent": "max_concurrent"})


@hookimpl
def grok2api_register_capabilities(capabilities: CapabilityRegistry, settings: Settings) -> None:
    from grok2api.api import Capability
    from grok2api_plugins.video.jobs import read_create_body

    capabilities.add(Capability("video", "POST", "/v1/videos", read_body=read_create_body,
                                description="OpenAI Videos API: create a video job"))


@hookimpl
def grok2api_register_models(models: ModelRegistry) -> None:
    from grok2api_plugins.video.catalog import VIDEO
    from grok2api_plugins.video.chat import video_completions
    from grok2api_plugins.video.jobs import create_job

    models.add(VIDEO, chat=video_completions, video=create_job)


@hookimpl
def grok2api_add_routes(app: web.Application) -> list[web.AbstractRouteDef]:
    from grok2api_plugins.video.jobs import job_routes

    return job_routes()


@hookimpl
def grok2api_cleanup_ctx(app: web.Application) -> CleanupContext:
    from grok2api_plugins.video.service import video_context

    return video_context
