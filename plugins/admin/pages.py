"""The console's pages: Jinja2 templates around one layout, registered through the admin-page hook.

A page is server-rendered HTML with no inline script or style (the kernel's CSP forbids
both); its behaviour is one ES module under ``/static/admin/pages/``. Everything a user or
the upstream supplied reaches the page as data from the JSON API and is rendered there as
text, so the templates only ever hold our own strings, escaped by Jinja2's autoescape.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from grok2api.api import REGISTRIES, SETTINGS, AdminPage, AdminPageRegistry, StaticFiles, __version__

HERE = Path(__file__).parent
STATIC = "admin"


@cache
def templates() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(request: web.Request, template: str, **context: object) -> web.Response:
    """``template`` inside the layout: navigation, storage badge and version filled in."""
    settings = request.app[SETTINGS]
    html = templates().get_template(template).render(
        navigation=request.app[REGISTRIES].admin_pages.navigation(), current=request.path,
        storage=settings.server.storage_type.upper(), version=__version__, static=f"/static/{STATIC}", **context)
    return web.Response(text=html, content_type="text/html", headers={"Cache-Control": "no-store"})


def page(path: str, template: str, *, name: str = "", title: str = "", **options: Any) -> AdminPage:
    """The admin page at ``path`` showing ``template``; ``name`` titles the document when the
    page has no navigation ``title``. ``options`` are :class:`AdminPage`'s."""
    async def handle(request: web.Request) -> web.Response:
        return render(request, template, title=name or title)

    return AdminPage(path, handle, title=title, **options)


PAGES = (
    page("/login", "login.html", name="Sign in", public=True, login=True),
    page("/admin/token", "token.html", title="Tokens", order=10),
    page("/admin/keys", "keys.html", title="API keys", order=20),
    page("/admin/chat", "chat.html", title="Chat", order=30),
    page("/admin/datacenter", "datacenter.html", title="Datacenter", order=40),
    page("/admin/config", "config.html", title="Config", order=50),
    page("/admin/cache", "cache.html", title="Cache", order=60),
    page("/chat", "chat.html", name="Chat", public=True),
)


async def to_login(request: web.Request) -> web.Response:
    raise web.HTTPFound("/login")


def register_pages(pages: AdminPageRegistry) -> None:
    pages.add_static(StaticFiles(STATIC, HERE / "static"))
    for each in PAGES:
        pages.add(each)
    for path in ("/", "/admin"):
        pages.add(AdminPage(path, to_login, public=True))
