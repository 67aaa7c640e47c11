"""Admin users, their sessions and the login throttle, all in storage so every worker agrees.

* Users (namespace ``admin_users``, keyed by username) hold an argon2id hash and an
  ``epoch``: a new password draws a new epoch, and a session made under another epoch
  is over, on every worker at once. ``app.admin_username`` / ``app.app_key`` seed them
  at start-up, and reset the password when app.app_key changes (:meth:`Users.seed`).
* Sessions (``sessions``, keyed by the SHA-256 of the token, so a leaked database opens
  nothing) end after ``admin.session_idle_sec`` unused (the record's TTL, renewed as it
  is used) and ``admin.session_max_sec`` after login whatever happens.
* A session travels as ``Authorization: Bearer adm-…`` or as the ``grok2api_session``
  cookie; with the cookie, a state-changing request must repeat the session's CSRF token
  (an HMAC of the session token, so nothing more is stored) in ``X-CSRF-Token``.
* Login failures are counted per client address and per username in counter
  namespaces of fixed windows (``admin_login:<window>:<index>``); past the limit the
  login is a 429 with ``Retry-After`` until the window ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import math
import secrets
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from grok2api.api import (
    JSON,
    NS_SESSIONS,
    SESSION_COOKIE,
    AdminSessions,
    ApiError,
    Settings,
    Storage,
    bearer,
    client_address,
    invalid,
    is_loopback,
    logger,
    now_ms,
    random_hex,
    read_json,
)
from grok2api_plugins.admin.settings import AdminSettings

NS_USERS = "admin_users"
THROTTLE_PREFIX = "admin_login:"
DEFAULT_PASSWORD = "admin"
CSRF_HEADER = "X-CSRF-Token"
#: readable by the console's script, which sends it back in :data:`CSRF_HEADER` (double submit)
CSRF_COOKIE = "grok2api-csrf"
PASSWORD_HEADER = "X-Grok2api-Password-Change"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: a session's last use is written at most this often (a write per request would be wasted)
TOUCH_EVERY_MS = 30_000


@dataclass(frozen=True, slots=True)
class Principal:
    """The admin a request authenticated as, and how."""

    username: str
    session_id: str
    token: str
    via_cookie: bool
    must_change: bool


PRINCIPAL = web.RequestKey("admin_principal", Principal)
#: set on every admin request while the default password is in use (a response header says so)
PASSWORD_DUE = web.RequestKey("admin_password_due", bool)


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id with the RFC 9106 low-memory profile


@cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so both cases take as long."""
    return _hasher().hash(secrets.token_urlsafe(16))


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher().verify(hashed, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(token: str) -> str:
    return hmac.new(token.encode(), b"grok2api-csrf", hashlib.sha256).hexdigest()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def password_problem(password: str, username: str, minimum: int) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < minimum:
        return f"the new password must have at least {minimum} characters"
    if password == DEFAULT_PASSWORD or password.lower() == username.lower():
        return "the new password must be neither the default nor the username"
    return None


class Users:
    """Admin users in storage, with argon2id hashes; hashing runs off the event loop."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def seed(self, username: str, password: str) -> bool:
        """At start-up, ``app.admin_username`` / ``app.app_key``: a user that does not exist is
        created from them, and one whose configured password changed since it was last seeded
        takes the new one, which ends its sessions (the way back in: set app.app_key, restart).
        A password changed with ``POST /api/v1/admin/password`` stays while app.app_key stays."""
        user = await self.get(username)
        if user is not None and await asyncio.to_thread(_verify, str(user.get("seed_hash", "")), password):
            return False
        await self._store(username, password, created=user is None, seeded=True)
        if user is None:
            logger.info("admin: user {!r} created from app.admin_username / app.app_key", username)
        else:
            logger.warning("admin: app.app_key changed, so the password of {!r} was reset to it", username)
        return True

    async def create(self, username: str, password: str) -> JSON:
        """Store a new admin user (or replace one), with a fresh epoch."""
        return await self._store(username, password, created=True)

    async def get(self, username: str) -> JSON | None:
        return await self.storage.get(NS_USERS, username) if username else None

    async def verify(self, username: str, password: str) -> JSON | None:
        """The user record when the password is right, else None (as slow either way)."""
        user = await self.get(username)
        hashed = str(user.get("hash", "")) if user else ""
        ok = await asyncio.to_thread(_verify, hashed or await asyncio.to_thread(_dummy_hash), password)
        if not ok or user is None:
            return None
        if _hasher().check_needs_rehash(hashed):  # the hash parameters grew since: upgrade quietly
            await self.storage.patch(NS_USERS, username, {"hash": await asyncio.to_thread(_hasher().hash, password)})
        return user

    async def set_password(self, username: str, password: str) -> JSON:
        return await self._store(username, password, created=False)

    async def _store(self, username: str, password: str, *, created: bool, seeded: bool = False) -> JSON:
        now = now_ms()
        hashed = await asyncio.to_thread(_hasher().hash, password)
        record: JSON = {
            "hash": hashed,
            "epoch": random_hex(8),
            "must_change": password == DEFAULT_PASSWORD,
            "password_changed_at": None if created else now,
        }
        if seeded:  # what app.app_key was when it last set this password
            record["seed_hash"] = hashed
        if created:
            record["created_at"] = now
            await self.storage.put(NS_USERS, username, record)
            return record
        return await self.storage.patch(NS_USERS, username, record) or record


class LoginThrottle:
    """Failed logins per address and per username, in fixed windows shared by every worker."""

    def __init__(self, storage: Storage, config: AdminSettings) -> None:
        self.storage = storage
        self.config = config

    def _window(self) -> tuple[str, float]:
        """The current window's counter namespace and the seconds until it ends."""
        length = self.config.login_window_sec
        now = time.time()
        index = int(now // length)
        return f"{THROTTLE_PREFIX}{length}:{index}", (index + 1) * length - now

    def _subjects(self, address: str, username: str) -> list[tuple[str, int]]:
        user = hashlib.sha256(username.encode()).hexdigest()[:40]
        return [(f"addr:{address}", self.config.login_max_failures_per_address),
                (f"user:{user}", self.config.login_max_failures_per_user)]

    async def check(self, address: str, username: str) -> None:
        ns, left = self._window()
        for key, limit in self._subjects(address, username):
            if (await self.storage.counters(ns, key)).get("failures", 0) >= limit:
                raise ApiError(429, "Too many failed logins; try again later", code="login_throttled",
                               headers={"Retry-After": str(max(1, math.ceil(left)))})

    async def failed(self, address: str, username: str) -> None:
        ns, _ = self._window()
        for key, _limit in self._subjects(address, username):
            await self.storage.incr(ns, key, {"failures": 1})
        for old in await self.storage.counter_namespaces(THROTTLE_PREFIX):
            if old != ns:
                await self.storage.drop_counters(old)


def _https(request: web.Request, trusted_proxies: list[str]) -> bool:
    """The client speaks HTTPS: directly, or as a trusted proxy's ``X-Forwarded-Proto`` says."""
    if request.secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    if proto != "https":
        return False
    try:
        peer = ipaddress.ip_address(request.remote or "")
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(cidr, strict=False) for cidr in trusted_proxies)


class StoredSessions(AdminSessions):
    """The kernel's admin guard and login, backed by stored users instead of ``app.app_key``."""

    def __init__(self, storage: Storage, settings: Settings) -> None:
        super().__init__(storage, lambda: settings.app.app_key)
        self.settings = settings
        self.users = Users(storage)

    @property
    def config(self) -> AdminSettings:
        section: AdminSettings = self.settings.admin  # type: ignore[attr-defined]
        return section

    # sessions ------------------------------------------------------------------
    def _alive(self, record: JSON, user: JSON | None, now: int) -> bool:
        config = self.config
        return (user is not None and _same(str(record.get("epoch", "")), str(user.get("epoch", "")))
                and now < int(record.get("created_at", 0)) + config.session_max_sec * 1000
                and now < int(record.get("last_seen", 0)) + config.session_idle_sec * 1000)

    async def _lookup(self, token: str) -> tuple[str, JSON, JSON] | None:
        """``(session id, session record, user record)`` of a live session; renews its idle expiry."""
        if not token.startswith("adm-"):
            return None
        key = session_id(token)
        record = await self.storage.get(NS_SESSIONS, key)
        if record is None:
            return None
        user = await self.users.get(str(record.get("username", "")))
        now = now_ms()
        if user is None or not self._alive(record, user, now):
            return None
        if now - int(record["last_seen"]) >= TOUCH_EVERY_MS:
            record = {**record, "last_seen": now}
            await self.storage.put(NS_SESSIONS, key, record, ttl=self._ttl(record, now))
        return key, record, user

    def _ttl(self, record: JSON, now: int) -> float:
        config = self.config
        left = (int(record["created_at"]) + config.session_max_sec * 1000 - now) / 1000
        return max(1.0, min(float(config.session_idle_sec), left))

    async def valid(self, token: str) -> bool:
        return await self._lookup(token) is not None

    async def authorize(self, request: web.Request) -> None:
        token, via_cookie = bearer(request), False
        if token is None:
            token = request.cookies.get(SESSION_COOKIE)
            via_cookie = token is not None
        found = await self._lookup(token) if token else None
        if token is None or found is None:
            raise ApiError(401, "Admin session required: log in at POST /api/v1/admin/login",
                           code="invalid_admin_session")
        key, record, user = found
        must_change = bool(user.get("must_change"))
        if must_change:
            request[PASSWORD_DUE] = True
            self._loopback_only(request)
        if via_cookie and request.method not in SAFE_METHODS \
                and not _same(request.headers.get(CSRF_HEADER, ""), csrf_token(token)):
            raise ApiError(403, f"A request with the session cookie must carry the session's {CSRF_HEADER} header",
                           code="csrf_failed")
        request[PRINCIPAL] = Principal(str(record["username"]), key, token, via_cookie, must_change)

    @staticmethod
    def _loopback_only(request: web.Request) -> None:
        if not is_loopback(request):
            raise ApiError(403, "The default admin password works only from loopback: change it with "
                           "POST /api/v1/admin/password on this machine", code="default_password")

    async def login(self, request: web.Request) -> web.Response:
        """Trade a username and password for a session; the original's bearer-as-password fallback included."""
        body = await read_json(request)
        username = str(body.get("username") or "").strip()
        password = str(body.get("password") or "").strip()
        if not password and (legacy := bearer(request)):
            password, username = legacy, username or "admin"
        if not username or not password:
            raise invalid("Missing username or password", "password" if username else "username")
        address = str(client_address(request) or "unknown")
        throttle = LoginThrottle(self.storage, self.config)
        await throttle.check(address, username)
        user = await self.users.verify(username, password)
        if user is None:
            await throttle.failed(address, username)
            logger.warning("admin: failed login from {}", address)
            raise ApiError(401, "Invalid username or password", code="invalid_credentials")
        if user.get("must_change"):
            request[PASSWORD_DUE] = True
            self._loopback_only(request)
        return await self.issue(request, username, user)

    async def issue(self, request: web.Request, username: str, user: JSON) -> web.Response:
        """A new session for ``username``: its token in the body and in the cookies."""
        config, now = self.config, now_ms()
        token = "adm-" + secrets.token_urlsafe(32)
        record: JSON = {"username": username, "epoch": user.get("epoch", ""), "created_at": now, "last_seen": now,
                        "address": str(client_address(request) or ""),
                        "user_agent": request.headers.get("User-Agent", "")[:200]}
        await self.storage.put(NS_SESSIONS, session_id(token), record, ttl=config.session_idle_sec)
        must_change = bool(user.get("must_change"))
        response = web.json_response({
            "status": "success", "token": token, "csrf_token": csrf_token(token), "username": username,
            "expires_in": config.session_idle_sec, "max_age": config.session_max_sec,
            "password_change_required": must_change,
        })
        secure = _https(request, self.settings.app.trusted_proxies)
        response.set_cookie(SESSION_COOKIE, token, max_age=config.session_max_sec, path="/", httponly=True,
                            samesite="Strict", secure=secure)
        response.set_cookie(CSRF_COOKIE, csrf_token(token), max_age=config.session_max_sec, path="/",
                            samesite="Strict", secure=secure)
        return response

    async def sessions_of(self, username: str, *, live: bool = True) -> dict[str, JSON]:
        """The sessions of one admin by id: the live ones, or every stored one."""
        user, now = await self.users.get(username), now_ms()
        return {key: record for key, record in (await self.storage.list(NS_SESSIONS)).items()
                if record.get("username") == username and (not live or self._alive(record, user, now))}

    async def revoke(self, username: str, key: str) -> bool:
        """End one of ``username``'s sessions; False when it is not one."""
        if key not in await self.sessions_of(username):
            return False
        return await self.storage.delete(NS_SESSIONS, key)

    async def change_password(self, request: web.Request, principal: Principal, body: dict[str, Any]) -> web.Response:
        """Check the current password, store the new one: every session of this admin ends
        (a new epoch) and the caller gets a fresh one."""
        current = str(body.get("current_password") or body.get("password") or "")
        new = str(body.get("new_password") or "")
        if not new:
            raise invalid("'new_password' is required", "new_password")
        if await self.users.verify(principal.username, current) is None:
            raise ApiError(403, "The current password is wrong", param="current_password", code="invalid_credentials")
        problem = password_problem(new, principal.username, self.config.min_password_length)
        if problem:
            raise invalid(problem, "new_password")
        user = await self.users.set_password(principal.username, new)  # a new epoch: every session is over
        await self.storage.delete_many(NS_SESSIONS, list(await self.sessions_of(principal.username, live=False)))
        request.pop(PASSWORD_DUE, None)
        logger.info("admin: password of {!r} changed; its other sessions ended", principal.username)
        return await self.issue(request, principal.username, user)
