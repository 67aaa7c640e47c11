"""Item 9 of issue 14: headers every answer carries, a CSP on HTML, media with the type
their bytes show and ``nosniff``."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from grok2api import hookimpl
from grok2api.api import SETTINGS
from grok2api.web.middleware import CONTENT_SECURITY_POLICY

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


class HtmlPlugin:
    plugin_name = "html-page"

    @hookimpl
    def grok2api_add_routes(self, app: web.Application) -> list[web.RouteDef]:
        async def page(request: web.Request) -> web.Response:
            return web.Response(text="<p>hi</p>", content_type="text/html")

        return [web.get("/page", page)]


async def test_every_answer_is_unsniffable_and_sends_no_referrer(gateway) -> None:
    client = await gateway("storage_local", HtmlPlugin())
    for path in ("/health", "/v1/models", "/nope", "/page"):
        resp = await client.get(path)
        assert resp.headers["X-Content-Type-Options"] == "nosniff", path
        assert resp.headers["Referrer-Policy"] == "no-referrer", path
    assert (await client.get("/page")).headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "Content-Security-Policy" not in (await client.get("/health")).headers
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY and "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY


async def test_media_are_served_with_the_type_their_bytes_show(gateway) -> None:
    client = await gateway("storage_local")
    images = Path(client.app[SETTINGS].data_dir) / "tmp" / "image"
    images.mkdir(parents=True)
    (images / "users-u-generated-a-image.jpg").write_bytes(PNG)  # the name says JPEG, the bytes PNG
    (images / "users-u-generated-b-image.jpg").write_bytes(b"<html><script>alert(1)</script></html>")
    png = await client.get("/v1/files/image/users-u-generated-a-image.jpg")
    assert png.status == 200 and png.headers["Content-Type"] == "image/png"
    assert png.headers["X-Content-Type-Options"] == "nosniff" and await png.read() == PNG
    html = await client.get("/v1/files/image/users-u-generated-b-image.jpg")
    assert html.status == 200 and html.headers["Content-Type"] == "application/octet-stream"
    assert html.headers["X-Content-Type-Options"] == "nosniff"
    video_as_image = await client.get("/v1/files/video/users-u-generated-a-image.jpg")
    assert video_as_image.status == 404
