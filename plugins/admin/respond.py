"""What every admin handler shares: the JSON reply that says when a password change is due,
the caller, and checked query parameters (a bad one is a 400 naming it, never a 500)."""

from __future__ import annotations

from aiohttp import web

from grok2api.api import JSON, SESSIONS, invalid
from grok2api_plugins.admin.identity import PASSWORD_DUE, PASSWORD_HEADER, PRINCIPAL, Principal, StoredSessions


def reply(request: web.Request, data: JSON, *, status: int = 200) -> web.Response:
    if request.get(PASSWORD_DUE):
        data = {**data, "password_change_required": True}
    return web.json_response(data, status=status)


async def mark_password_due(request: web.Request, response: web.StreamResponse) -> None:
    """Every admin response, the kernel's and errors included, says when the default password is in use."""
    if request.get(PASSWORD_DUE):
        response.headers[PASSWORD_HEADER] = "required"


def principal(request: web.Request) -> Principal:
    return request[PRINCIPAL]


def sessions(request: web.Request) -> StoredSessions:
    held = request.app[SESSIONS]
    if not isinstance(held, StoredSessions):
        raise RuntimeError("the admin plugin's sessions are not installed")
    return held


def query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise invalid(f"'{name}' must be an integer from {low} to {high}", name) from None
    if not low <= value <= high:
        raise invalid(f"'{name}' must be an integer from {low} to {high}", name)
    return value


def query_list(request: web.Request, name: str) -> list[str]:
    """Repeated or comma-separated values: ``?status=active&status=invalid`` or ``?status=active,invalid``."""
    return [part.strip() for value in request.query.getall(name, []) for part in value.split(",") if part.strip()]
