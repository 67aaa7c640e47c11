"""The ``[video]`` config section (the original's ``grok.video_poster_preview`` and
``performance.media_max_concurrent`` land here)."""

from __future__ import annotations

from pydantic import Field

from grok2api.api import Section


class VideoSettings(Section):
    poster_preview: bool = Field(
        False, description="chat answers show the poster image linking to the video instead of a <video> element")
    max_concurrent: int = Field(
        50, ge=1, description="videos generated at once, across every worker (chat answers and jobs)")
    progress_text: str = Field(
        "Generating video: {progress}%", description="progress line shown as reasoning; {progress} is the percent")
    job_lease_sec: float = Field(
        30, gt=1, description="a job's claim expires this long after its worker last renewed it (a crashed worker)")
    job_poll_sec: float = Field(1.0, gt=0, description="how often each worker looks for queued jobs")
    job_attempts: int = Field(
        2, ge=1, description="runs a job gets when the gateway stops under it; then it fails with that reason")
