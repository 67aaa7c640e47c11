"""Behind a reverse proxy: forwarding headers never make a request loopback unless a trusted
proxy sent them, and admin sessions end when the admin password changes."""

from __future__ import annotations

import pytest

from grok2api.config.settings import ConfigError, load_settings

from .plugins_for_tests import EchoPlugin

STORE = "storage_local"
LOGIN = "/api/v1/admin/login"
DEFAULT = {"username": "admin", "password": "admin"}
CHAT = {"model": "echo-1", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("header", [
    {"X-Forwarded-For": "127.0.0.1"}, {"X-Real-IP": "127.0.0.1"}, {"Forwarded": "for=127.0.0.1"},
    {"X-Forwarded-For": "203.0.113.7"},
])
async def test_forwarded_requests_from_an_untrusted_peer_are_not_loopback(gateway, header) -> None:
    client = await gateway(STORE, EchoPlugin())
    assert (await client.post(LOGIN, json=DEFAULT)).status == 200  # plain loopback
    assert (await client.post(LOGIN, json=DEFAULT, headers=header)).status == 403
    assert (await client.post("/v1/chat/completions", json=CHAT)).status == 200
    assert (await client.post("/v1/chat/completions", json=CHAT, headers=header)).status == 401


@pytest.mark.parametrize(("header", "loopback"), [
    ({"X-Forwarded-For": "203.0.113.7"}, False),
    ({"X-Forwarded-For": "203.0.113.7, 127.0.0.1"}, False),  # the proxy appended itself
    ({"X-Forwarded-For": "127.0.0.1"}, True),
    ({"X-Real-IP": "198.51.100.2"}, False),
    ({"Forwarded": 'for="[2001:db8::1]";proto=https'}, False),
    ({"Forwarded": "for=127.0.0.1;proto=https"}, True),
    ({"X-Forwarded-For": "unknown"}, False),
])
async def test_a_trusted_proxy_names_the_client(gateway, make_settings, header, loopback) -> None:
    settings = make_settings(app={"trusted_proxies": ["127.0.0.1/32"]})
    client = await gateway(STORE, EchoPlugin(), settings=settings)
    status = (await client.post(LOGIN, json=DEFAULT, headers=header)).status
    assert status == (200 if loopback else 403)


@pytest.mark.parametrize("catch_all", ["0.0.0.0/0", "::/0"])
def test_catch_all_trusted_proxies_are_refused(data_dir, catch_all) -> None:
    (data_dir / "config.toml").write_text(f'[app]\ntrusted_proxies = ["{catch_all}"]\n')
    with pytest.raises(ConfigError, match="app.trusted_proxies"):
        load_settings()


async def test_sessions_end_when_the_admin_password_changes(gateway, make_settings) -> None:
    settings = make_settings(app={"app_key": "first-secret-password"})
    client = await gateway(STORE, settings=settings)
    login = await client.post(LOGIN, json={"username": "admin", "password": "first-secret-password"})
    headers = {"Authorization": f"Bearer {(await login.json())['token']}"}
    assert (await client.get("/api/v1/admin/plugins", headers=headers)).status == 200
    settings.app = settings.app.model_copy(update={"app_key": "second-secret-password"})
    assert (await client.get("/api/v1/admin/plugins", headers=headers)).status == 401
