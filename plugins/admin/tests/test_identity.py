"""Admin users, sessions, cookies with CSRF, the default password and login throttling."""

from __future__ import annotations

import pytest

from grok2api.api import NS_SESSIONS, SESSION_COOKIE, STORAGE, now_ms
from grok2api_plugins.admin import identity
from grok2api_plugins.admin.identity import CSRF_COOKIE, CSRF_HEADER, NS_USERS, PASSWORD_HEADER

from .support import API_KEY, PASSWORD, PROXIED, REMOTE, Admin, auth, changed, login


async def test_first_start_seeds_a_hashed_user_and_flags_the_default_password(admin: Admin) -> None:
    client = await admin()
    users = await client.app[STORAGE].list(NS_USERS)
    assert list(users) == ["admin"] and users["admin"]["hash"].startswith("$argon2id$")
    assert users["admin"]["must_change"] is True
    resp = await client.post("/api/v1/admin/login", json={"username": "admin", "password": "admin"})
    body = await resp.json()
    assert resp.headers[PASSWORD_HEADER] == "required" and body["password_change_required"] is True
    me = await client.get("/api/v1/admin/session", headers=auth(body["token"]))
    assert me.headers[PASSWORD_HEADER] == "required" and (await me.json())["password_change_required"] is True
    plugins = await client.get("/api/v1/admin/plugins", headers=auth(body["token"]))  # a kernel route too
    assert plugins.status == 200 and plugins.headers[PASSWORD_HEADER] == "required"
    stored = await client.app[STORAGE].list(NS_SESSIONS)
    assert body["token"] not in str(stored) and len(stored) == 1


async def test_default_password_works_only_from_loopback(admin: Admin) -> None:
    client = await admin(app=PROXIED)
    resp = await client.post("/api/v1/admin/login", json={"username": "admin", "password": "admin"}, headers=REMOTE)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "default_password"
    token = (await login(client))["token"]  # from this machine
    resp = await client.get("/api/v1/admin/session", headers={**auth(token), **REMOTE})
    assert resp.status == 403 and resp.headers[PASSWORD_HEADER] == "required"


async def test_password_change_ends_every_session_and_lifts_the_limits(admin: Admin) -> None:
    client = await admin(app=PROXIED)
    first, second = (await login(client))["token"], (await login(client))["token"]
    wrong = await client.post("/api/v1/admin/password", headers=auth(first),
                              json={"current_password": "nope", "new_password": PASSWORD})
    assert wrong.status == 403
    short = await client.post("/api/v1/admin/password", headers=auth(first),
                              json={"current_password": "admin", "new_password": "short"})
    assert short.status == 400 and (await short.json())["error"]["param"] == "new_password"
    same = await client.post("/api/v1/admin/password", headers=auth(first),
                             json={"current_password": "admin", "new_password": "admin"})
    assert same.status == 400
    resp = await client.post("/api/v1/admin/password", headers=auth(first),
                             json={"current_password": "admin", "new_password": PASSWORD})
    assert resp.status == 200 and PASSWORD_HEADER not in resp.headers
    fresh = (await resp.json())["token"]
    for old in (first, second):
        assert (await client.get("/api/v1/admin/session", headers=auth(old))).status == 401
    me = await client.get("/api/v1/admin/session", headers={**auth(fresh), **REMOTE})
    assert me.status == 200 and PASSWORD_HEADER not in me.headers
    assert (await me.json())["password_change_required"] is False
    assert (await login(client, PASSWORD, headers=REMOTE))["password_change_required"] is False
    bad = await client.post("/api/v1/admin/login", json={"username": "admin", "password": "admin"})
    assert bad.status == 401


async def test_refusals_of_the_admin_api(admin: Admin) -> None:
    client = await admin(app={"api_key": API_KEY})
    token = (await login(client))["token"]
    assert (await client.get("/api/v1/admin/session")).status == 401
    assert (await client.get("/api/v1/admin/session", headers=auth(API_KEY))).status == 401
    forged = "adm-" + "x" * 43
    assert (await client.get("/api/v1/admin/session", headers=auth(forged))).status == 401
    assert (await client.get("/api/v1/admin/session", cookies={SESSION_COOKIE: forged})).status == 401
    assert (await client.get("/v1/models", headers=auth(token))).status == 401  # a session is no API key
    assert (await client.get("/v1/models", headers=auth(API_KEY))).status == 200


async def test_cookie_sessions_need_the_csrf_token_to_change_anything(admin: Admin) -> None:
    client = await admin()
    resp = await client.post("/api/v1/admin/login", json={"username": "admin", "password": "admin"})
    body = await resp.json()
    cookie = resp.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and not cookie["secure"]
    assert resp.cookies[CSRF_COOKIE].value == body["csrf_token"] and not resp.cookies[CSRF_COOKIE]["httponly"]
    client.session.cookie_jar.clear()
    jar = {SESSION_COOKIE: body["token"]}
    assert (await client.get("/api/v1/admin/sessions", cookies=jar)).status == 200
    refused = await client.post("/api/v1/admin/logout", cookies=jar)
    assert refused.status == 403 and (await refused.json())["error"]["code"] == "csrf_failed"
    forged = await client.post("/api/v1/admin/logout", cookies=jar, headers={CSRF_HEADER: "0" * 64})
    assert forged.status == 403
    ok = await client.post("/api/v1/admin/logout", cookies=jar, headers={CSRF_HEADER: body["csrf_token"]})
    assert ok.status == 200
    assert (await client.get("/api/v1/admin/sessions", cookies=jar)).status == 401
    bearer = (await login(client))["token"]
    assert (await client.post("/api/v1/admin/logout", headers=auth(bearer))).status == 200  # no CSRF with a bearer


async def test_cookie_is_secure_behind_an_https_proxy(admin: Admin) -> None:
    client = await admin(app=PROXIED)
    resp = await client.post("/api/v1/admin/login", json={"username": "admin", "password": "admin"},
                             headers={"X-Forwarded-Proto": "https"})
    assert resp.cookies[SESSION_COOKIE]["secure"]


async def test_sessions_list_revoke_and_logout(admin: Admin) -> None:
    client = await admin()
    mine, other = (await login(client))["token"], (await login(client))["token"]
    rows = (await (await client.get("/api/v1/admin/sessions", headers=auth(mine))).json())["sessions"]
    assert len(rows) == 2 and sum(r["current"] for r in rows) == 1
    other_id = next(r["id"] for r in rows if not r["current"])
    assert (await client.delete(f"/api/v1/admin/sessions/{other_id}", headers=auth(mine))).status == 200
    assert (await client.get("/api/v1/admin/session", headers=auth(other))).status == 401
    assert (await client.delete(f"/api/v1/admin/sessions/{other_id}", headers=auth(mine))).status == 404
    assert (await client.post("/api/v1/admin/logout", headers=auth(mine))).status == 200
    assert (await client.get("/api/v1/admin/session", headers=auth(mine))).status == 401


async def test_idle_and_absolute_expiry(admin: Admin, monkeypatch: pytest.MonkeyPatch) -> None:
    client = await admin(admin={"session_idle_sec": 60, "session_max_sec": 150})
    token = (await login(client))["token"]
    start = now_ms()

    def at(seconds: float) -> None:
        monkeypatch.setattr(identity, "now_ms", lambda: start + int(seconds * 1000))

    for seconds in (50, 100, 140):  # used within the idle time each time: alive, until the absolute end
        at(seconds)
        assert (await client.get("/api/v1/admin/session", headers=auth(token))).status == 200
    at(155)
    assert (await client.get("/api/v1/admin/session", headers=auth(token))).status == 401
    idle = (await login(client))["token"]
    at(155 + 61)
    assert (await client.get("/api/v1/admin/session", headers=auth(idle))).status == 401


async def test_login_throttle_per_address_and_per_user_across_workers(admin: Admin) -> None:
    limits = {"login_max_failures_per_address": 3, "login_max_failures_per_user": 5}
    one = await admin(app=PROXIED, admin=limits)
    two = await admin(admin=limits)  # a second worker on the same database
    other = {"X-Forwarded-For": "198.51.100.7"}
    for _ in range(3):
        resp = await one.post("/api/v1/admin/login", json={"username": "admin", "password": "x"}, headers=REMOTE)
        assert resp.status == 401
    refused = await two.post("/api/v1/admin/login", json={"username": "admin", "password": "admin"}, headers=REMOTE)
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    assert (await two.post("/api/v1/admin/login", json={"username": "admin", "password": "x"},
                           headers=other)).status == 401
    assert (await one.post("/api/v1/admin/login", json={"username": "admin", "password": "x"},
                           headers={"X-Forwarded-For": "198.51.100.8"})).status == 401
    # five failures for "admin" now: every address is refused for that user, not for others
    assert (await one.post("/api/v1/admin/login", json={"username": "admin", "password": "admin"})).status == 429
    assert (await one.post("/api/v1/admin/login", json={"username": "root", "password": "x"})).status == 401


async def test_legacy_bearer_password_login(admin: Admin) -> None:
    client = await admin()
    resp = await client.post("/api/v1/admin/login", json={}, headers=auth("admin"))
    assert resp.status == 200 and (await resp.json())["token"].startswith("adm-")


async def test_a_changed_password_is_the_stored_one(admin: Admin) -> None:
    client = await admin()
    token = await changed(client)
    assert (await client.get("/api/v1/admin/session", headers=auth(token))).status == 200
    assert (await client.post("/api/v1/admin/login", json={"username": "admin", "password": PASSWORD})).status == 200


async def test_a_changed_app_key_resets_the_password_at_the_next_start(admin: Admin) -> None:
    first = await admin()
    token = await changed(first)
    again = await admin(app={"app_key": "recovered-password-1"})  # the operator's way back in, after a restart
    assert (await again.get("/api/v1/admin/session", headers=auth(token))).status == 401
    assert (await again.post("/api/v1/admin/login", json={"username": "admin", "password": PASSWORD})).status == 401
    recovered = await login(again, "recovered-password-1")
    assert recovered["password_change_required"] is False
    resp = await again.post("/api/v1/admin/password", headers=auth(recovered["token"]),
                            json={"current_password": "recovered-password-1", "new_password": PASSWORD + "-2"})
    assert resp.status == 200
    unchanged = await admin(app={"app_key": "recovered-password-1"})  # the same key: the API's password stays
    assert (await login(unchanged, PASSWORD + "-2"))["token"]
    stale = await unchanged.post("/api/v1/admin/login", json={"username": "admin", "password": "recovered-password-1"})
    assert stale.status == 401
