"""``/api/v1/admin/session…``, logout and password: one admin's own sessions."""

from __future__ import annotations

from aiohttp import web

from grok2api.api import SESSION_COOKIE, ApiError, read_json
from grok2api_plugins.admin.identity import CSRF_COOKIE, csrf_token
from grok2api_plugins.admin.respond import principal, reply, sessions


async def current(request: web.Request) -> web.Response:
    who = principal(request)
    return reply(request, {"username": who.username, "session_id": who.session_id,
                           "csrf_token": csrf_token(who.token), "password_change_required": who.must_change})


async def logout(request: web.Request) -> web.Response:
    who = principal(request)
    await sessions(request).revoke(who.username, who.session_id)
    response = reply(request, {"status": "success"})
    response.del_cookie(SESSION_COOKIE, path="/")
    response.del_cookie(CSRF_COOKIE, path="/")
    return response


async def list_sessions(request: web.Request) -> web.Response:
    who = principal(request)
    rows = [{"id": key, "created_at": r.get("created_at"), "last_seen": r.get("last_seen"),
             "address": r.get("address", ""), "user_agent": r.get("user_agent", ""), "current": key == who.session_id}
            for key, r in (await sessions(request).sessions_of(who.username)).items()]
    rows.sort(key=lambda row: -int(row["created_at"] or 0))
    return reply(request, {"sessions": rows})


async def revoke(request: web.Request) -> web.Response:
    who = principal(request)
    if not await sessions(request).revoke(who.username, request.match_info["session_id"]):
        raise ApiError(404, "No such session of yours", code="session_not_found")
    return reply(request, {"status": "success"})


async def change_password(request: web.Request) -> web.Response:
    return await sessions(request).change_password(request, principal(request), await read_json(request))


def session_routes() -> list[web.RouteDef]:
    return [
        web.get("/api/v1/admin/session", current),
        web.post("/api/v1/admin/logout", logout),
        web.get("/api/v1/admin/sessions", list_sessions),
        web.delete("/api/v1/admin/sessions/{session_id}", revoke),
        web.post("/api/v1/admin/password", change_password),
    ]
