"""The original's HTML for a video in a chat answer, and OpenAI's ``VideoResource``."""

from __future__ import annotations

from html import escape
from typing import Any

_PLAY = ('<span style="position:absolute;top:50%;left:50%;transform:translate(-50%,-50%);'
         'width:64px;height:64px;border-radius:50%;background:rgba(0,0,0,.6);color:#fff;'
         'font-size:32px;line-height:64px;text-align:center">&#9654;</span>')


def video_html(video_url: str, poster_url: str | None, *, poster_preview: bool) -> str:
    """A ``<video>`` element (the poster as its ``poster``), or with ``poster_preview`` the
    poster image with a play button linking to the video (just a link without a poster)."""
    video = escape(video_url, quote=True)
    if poster_preview:
        if not poster_url:
            return f'<a href="{video}" target="_blank">{video}</a>'
        return (f'<a href="{video}" target="_blank" style="position:relative;display:inline-block">'
                f'<img src="{escape(poster_url, quote=True)}" alt="video" style="max-width:100%">{_PLAY}</a>')
    poster = f' poster="{escape(poster_url, quote=True)}"' if poster_url else ""
    return (f'<video id="video" controls preload="none"{poster}>'
            f'<source src="{video}" type="video/mp4"></video>')


def upscale_note(reason: str) -> str:
    return f"\n\nHD upscaling failed ({reason}); this is the SD video."


#: what a job record keeps that the API shows
PUBLIC_FIELDS = ("id", "object", "model", "status", "progress", "created_at", "completed_at", "expires_at",
                 "prompt", "size", "seconds", "remixed_from_video_id", "error")


def resource(job: dict[str, Any]) -> dict[str, Any]:
    """A job record as OpenAI's ``VideoResource`` (plus ``upscale_error`` when HD fell back to SD)."""
    body = {name: job.get(name) for name in PUBLIC_FIELDS}
    body["object"] = "video"
    if job.get("upscale_error"):
        body["upscale_error"] = job["upscale_error"]
    return body
