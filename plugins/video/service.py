"""The video plugin's per-app state: the cross-worker slots and the job runner."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from grok2api.api import SETTINGS, STORAGE, Settings
from grok2api_plugins.video.settings import VideoSettings
from grok2api_plugins.video.slots import Slots


def video_settings(settings: Settings) -> VideoSettings:
    section = settings.video  # type: ignore[attr-defined]
    assert isinstance(section, VideoSettings)
    return section


class VideoService:
    def __init__(self, app: web.Application) -> None:
        from grok2api_plugins.video.jobs import JobRunner

        self._settings = app[SETTINGS]
        self.slots = Slots(app[STORAGE], self._max_concurrent, self._lease)
        self.jobs = JobRunner(app, self)

    def settings(self) -> VideoSettings:
        """Read on every use: sections are swapped when the config changes."""
        return video_settings(self._settings)

    def _max_concurrent(self) -> int:
        return self.settings().max_concurrent

    def _lease(self) -> float:
        return self.settings().job_lease_sec


VIDEO_SERVICE = web.AppKey("video", VideoService)


async def video_context(app: web.Application) -> AsyncIterator[None]:
    """Start-up: the service, and the runner that picks up queued (and interrupted) jobs;
    shutdown: running jobs are stopped and handed back to the queue."""
    app[VIDEO_SERVICE] = service = VideoService(app)
    service.jobs.start()
    try:
        yield
    finally:
        await service.jobs.stop()
