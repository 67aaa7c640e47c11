"""Who may call what: API keys open ``/v1``, admin sessions open ``/api/v1/admin``, never the reverse.

* ``/v1/*`` (but ``/v1/files/*``, whose names are unguessable) needs
  ``Authorization: Bearer <key>`` or ``x-api-key: <key>`` (Anthropic's clients send
  that one; it is taken on every ``/v1`` route, so one client setting serves all
  of them): ``app.api_key`` or an active managed key. With no key configured at all,
  only loopback clients are served.
* ``/api/v1/admin/*`` (but the login route) needs a session token from
  ``POST /api/v1/admin/login``, made from ``app.admin_username`` / ``app.app_key``.
  Sessions live in storage, hashed, with an expiry, so every worker honours them.
* A route a plugin marks with :func:`api_key_route` authenticates by API key wherever it
  lives (the console's continuous-generation WebSocket sits under ``/api/v1/admin``);
  it also takes the key as ``?api_key=``, as browsers cannot set a WebSocket's headers.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from aiohttp import WSCloseCode, hdrs, web

from grok2api.keys.service import Identity, KeyService
from grok2api.logs.logger import logger
from grok2api.storage import NS_SESSIONS, Storage
from grok2api.web.appkeys import SETTINGS
from grok2api.web.body import read_json
from grok2api.web.clients import client_address, is_loopback
from grok2api.web.errors import ApiError, Handler, from_domain

IDENTITY = web.RequestKey("identity", Identity)
ADMIN_LOGIN_PATH = "/api/v1/admin/login"
SESSION_TTL = 24 * 3600
#: the cookie a browser carries the admin session in (HTML pages; the JSON API takes a bearer token)
SESSION_COOKIE = "grok2api_session"
_NO_KEY_HINT = (
    "No API key is configured, so only loopback clients are served. "
    "Create one with `grok2api keys create` or set app.api_key."
)


def same_secret(presented: str, expected: str) -> bool:
    """Constant-time comparison that is also safe for empty or non-ASCII strings."""
    return hmac.compare_digest(presented.encode(), expected.encode())


def bearer(request: web.Request) -> str | None:
    """The bearer token, or None; a header that is not ASCII (keys and session tokens never
    are) is a 401 naming it, not a token to compare."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    if not value.isascii():
        raise ApiError(401, "The Authorization header must be ASCII: Bearer <key>", param="Authorization",
                       code="invalid_api_key")
    return value.strip()


class AdminSessions:
    """Admin session tokens, stored by hash with a TTL so a leaked database opens nothing.

    A session also records a keyed digest of the admin password it was made under (keyed
    by the token, so the record says nothing about the password): when the password
    changes, every session made before ends.
    """

    def __init__(self, storage: Storage, password: Callable[[], str]) -> None:
        self.storage = storage
        self._password = password

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def _made_under(self, token: str) -> str:
        return hmac.new(token.encode(), self._password().encode(), hashlib.sha256).hexdigest()

    async def create(self, username: str) -> str:
        token = "adm-" + secrets.token_urlsafe(32)
        record = {"username": username, "password": self._made_under(token)}
        await self.storage.put(NS_SESSIONS, self._key(token), record, ttl=SESSION_TTL)
        return token

    async def valid(self, token: str) -> bool:
        record = await self.storage.get(NS_SESSIONS, self._key(token))
        return record is not None and hmac.compare_digest(str(record.get("password", "")), self._made_under(token))

    async def authorize(self, request: web.Request) -> None:
        """The guard of ``/api/v1/admin/*``: a bearer session token. The admin plugin's
        sessions replace this object (``app[SESSIONS]``) with stored users, cookies and CSRF."""
        token = bearer(request)
        if token is None or not token.startswith("adm-") or not await self.valid(token):
            raise ApiError(401, "Admin session required: log in at POST /api/v1/admin/login",
                           code="invalid_admin_session")

    async def login(self, request: web.Request) -> web.Response:
        """``POST /api/v1/admin/login`` with the configured ``app.admin_username`` / ``app.app_key``."""
        app = request.app[SETTINGS].app
        return await admin_login(request, await read_json(request), app.admin_username, app.app_key, self)


def x_api_key(request: web.Request) -> str | None:
    """The ``x-api-key`` header (Anthropic's way of sending the key), or None."""
    value = request.headers.get("x-api-key", "").strip()
    if not value:
        return None
    if not value.isascii():
        raise ApiError(401, "The x-api-key header must be ASCII", param="x-api-key", code="invalid_api_key")
    return value


def query_api_key(request: web.Request) -> str | None:
    """``?api_key=`` (routes marked :func:`api_key_route` only), or None."""
    value = request.query.get("api_key", "").strip()
    if not value:
        return None
    if not value.isascii():
        raise ApiError(401, "api_key must be ASCII", param="api_key", code="invalid_api_key")
    return value


async def authenticate_api(request: web.Request, api_key: str, keys: KeyService, *, in_query: bool = False
                           ) -> Identity:
    """Who the request's API key is; ``in_query`` also takes it from ``?api_key=``."""
    presented = bearer(request) or x_api_key(request) or (query_api_key(request) if in_query else None)
    if presented is None:
        if not api_key and not await keys.has_active_keys():
            if is_loopback(request):
                return Identity(key_id=None, name="loopback", kind="open")
            raise ApiError(401, _NO_KEY_HINT, code="invalid_api_key")
        raise ApiError(401, "Missing API key: send Authorization: Bearer <key> or x-api-key: <key>",
                       code="invalid_api_key")
    if api_key and same_secret(presented, api_key):
        return Identity(key_id=None, name="global", kind="global")
    identity = await keys.authenticate(presented)
    if identity is None:
        raise ApiError(401, "Invalid API key", code="invalid_api_key")
    return identity


class Middleware(Protocol):
    """What aiohttp takes as a middleware (its own protocol, spelled out for mypy)."""

    def __call__(self, request: web.Request, handler: Handler) -> Awaitable[web.StreamResponse]: ...


def needs_api_key(path: str) -> bool:
    """``/v1`` calls, but the media files (their names are unguessable)."""
    return path.startswith("/v1/") and not path.startswith("/v1/files/")


_API_KEY_ROUTE = "_grok2api_api_key_route"
H = TypeVar("H", bound=Callable[..., Any])


def api_key_route(handler: H) -> H:
    """Mark a route handler as authenticated by API key (``Authorization: Bearer``,
    ``x-api-key`` or ``?api_key=``) instead of by its path's rule: a console WebSocket
    under ``/api/v1/admin`` that clients open with a key, say. Only the marked route
    changes; every other admin route still needs an admin session. A refused WebSocket
    handshake is completed and closed with 1008 (policy violation) and the reason, which
    a browser's page can read, where a 401 reaches it only as a failed connection."""
    setattr(handler, _API_KEY_ROUTE, True)
    return handler


def _marked(request: web.Request) -> bool:
    return getattr(request.match_info.handler, _API_KEY_ROUTE, False) is True


async def _refuse_websocket(request: web.Request, error: ApiError) -> web.StreamResponse:
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    await socket.close(code=WSCloseCode.POLICY_VIOLATION, message=error.message.encode()[:120])
    return socket


def auth_middleware(get_api_key: Callable[[], str], keys: Callable[[], KeyService],
                    sessions: Callable[[], AdminSessions]) -> Middleware:
    """Guard ``/v1`` and routes marked :func:`api_key_route` with API keys, ``/api/v1/admin`` with sessions."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if needs_api_key(path):
            request[IDENTITY] = await authenticate_api(request, get_api_key(), keys())
        elif _marked(request):
            try:
                request[IDENTITY] = await authenticate_api(request, get_api_key(), keys(), in_query=True)
            except Exception as exc:  # an ApiError, or the keys' refusal of an expired key
                refused = exc if isinstance(exc, ApiError) else from_domain(exc)
                if refused is None or request.headers.get(hdrs.UPGRADE, "").lower() != "websocket":
                    raise
                return await _refuse_websocket(request, refused)
        elif path.startswith("/api/v1/admin/") and path != ADMIN_LOGIN_PATH:
            await sessions().authorize(request)
        return await handler(request)

    return middleware


async def admin_login(request: web.Request, body: dict[str, Any], username: str, password: str,
                      sessions: AdminSessions) -> web.Response:
    """Trade the admin credentials in ``body`` for a session token.

    The default password ``admin`` is accepted only from loopback, so a fresh install
    is never open to the network.
    """
    user = str(body.get("username") or "").strip()
    given = str(body.get("password") or "").strip()
    if not user or not given:
        raise ApiError(400, "Missing username or password", param="password" if user else "username")
    ok = same_secret(user, username) & same_secret(given, password)
    if ok and password == "admin" and not is_loopback(request):
        raise ApiError(403, "The default admin password works only from loopback; change app.app_key",
                       code="default_password")
    if not ok:
        logger.warning("failed admin login from {}", client_address(request))
        raise ApiError(401, "Invalid username or password", code="invalid_credentials")
    token = await sessions.create(user)
    return web.json_response({"status": "success", "token": token, "expires_in": SESSION_TTL})
