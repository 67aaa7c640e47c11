"""The video tests' gateway handle: openai SDK clients whose every ``/v1`` answer is checked
against OpenAI's schemas (chat chunks and completions, the Videos API's resources)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import openai
import orjson
from aiohttp import web

from grok2api.api import KEYS, STORAGE
from grok2api.testing.fake_grok import FakeGrok
from grok2api.testing.openai_schema import validate
from grok2api_plugins.chat.tests.support import AsyncCheckingTransport, Bodies, CheckingTransport, check_body

API_KEY = "sk-video-tests-0123456789"
OTHER_KEY = "sk-video-other-0123456789"


def check_video_body(method: str, path: str, status: int, content_type: str, body: bytes) -> list[str]:
    if status >= 400 or not path.startswith("/v1/videos"):
        return check_body(path, status, content_type, body)
    if path.endswith("/content"):
        return []
    data = orjson.loads(body)
    name = ("DeletedVideoResource" if method == "DELETE" else
            "VideoListResource" if path == "/v1/videos" and method == "GET" else "VideoResource")
    validate(name, data)
    return [name]


class VideoBodies(Bodies):
    def check(self, request: httpx.Request, response: httpx.Response, body: bytes) -> list[str]:
        return check_video_body(request.method, request.url.path, response.status_code,
                                response.headers.get("content-type", ""), body)


@dataclass
class Live:
    url: str
    app: web.Application
    fake: FakeGrok
    bodies: VideoBodies

    def aclient(self, key: str = API_KEY, **options: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(**{
            "base_url": self.url + "/v1", "api_key": key, "max_retries": 0, "timeout": 20,
            "http_client": httpx.AsyncClient(transport=AsyncCheckingTransport(self.bodies)), **options})

    def client(self, key: str = API_KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, timeout=20,
                             http_client=httpx.Client(transport=CheckingTransport(self.bodies)))

    async def video_used(self, key_name: str = "video-tests") -> int:
        rows = {row["name"]: row for row in await self.app[KEYS].list_rows()}
        return int(rows[key_name]["usage_today"]["video_used"])

    async def job(self, video_id: str) -> dict[str, Any]:
        record = await self.app[STORAGE].get("video_jobs", video_id)
        assert record is not None
        return record


async def wait_for(client: openai.AsyncOpenAI, video_id: str, timeout: float = 15) -> Any:
    """The job once it finished (completed or failed)."""
    async with asyncio.timeout(timeout):
        while True:
            video = await client.videos.retrieve(video_id)
            if video.status in ("completed", "failed"):
                return video
            await asyncio.sleep(0.05)
