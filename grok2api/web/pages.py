"""Admin console pages from every plugin: their routes, static folders and navigation.

A page needs an admin session (``Authorization: Bearer`` or the session cookie) unless
it is public; a browser without one is redirected to the login page, or gets 401 when
no plugin registered one.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from grok2api.plugin.registries import AdminPage, AdminPageRegistry
from grok2api.web.appkeys import REGISTRIES, SESSIONS
from grok2api.web.auth import SESSION_COOKIE, bearer
from grok2api.web.errors import ApiError, Handler

NAVIGATION_PATH = "/api/v1/admin/pages"


async def has_admin_session(request: web.Request) -> bool:
    token = bearer(request) or request.cookies.get(SESSION_COOKIE) or ""
    return token.startswith("adm-") and await request.app[SESSIONS].valid(token)


def _guarded(page: AdminPage, login_path: str | None) -> Handler:
    if page.public:
        return page.handler

    async def handle(request: web.Request) -> web.StreamResponse:
        if not await has_admin_session(request):
            if login_path is None:
                raise ApiError(401, "Admin session required: log in at POST /api/v1/admin/login",
                               code="invalid_admin_session")
            raise web.HTTPFound(f"{login_path}?{urlencode({'next': request.path_qs})}")
        return await page.handler(request)

    return handle


async def navigation(request: web.Request) -> web.Response:
    """The console's navigation: every titled page, in order (the admin session is checked by auth)."""
    pages = request.app[REGISTRIES].admin_pages
    return web.json_response({"pages": [
        {"path": p.path, "title": p.title, "plugin": pages.owners[p.path]}
        for p in pages.navigation()
    ]})


def admin_page_routes(pages: AdminPageRegistry) -> list[web.AbstractRouteDef]:
    routes: list[web.AbstractRouteDef] = [web.get(NAVIGATION_PATH, navigation)]
    routes += [web.get(p.path, _guarded(p, pages.login_path)) for p in pages.pages.values()]
    routes += [web.static(f"/static/{s.name}", s.directory, follow_symlinks=False) for s in pages.static.values()]
    return routes
