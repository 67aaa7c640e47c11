"""The aiohttp app: kernel routes, dispatch, and errors that always leave as OpenAI error objects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from grok2api.config.settings import ConfigError, Settings
from grok2api.plugin.registries import RegistrationError

from .plugins_for_tests import ConfiguredPlugin, CrashPlugin, EchoPlugin, ImageMethodPlugin, TwinPlugin

STORE = "storage_local"


def assert_openai_error(body: dict, code: str | None = None) -> dict:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


async def test_health(gateway) -> None:
    client = await gateway(STORE)
    resp = await client.get("/health")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "healthy" and body["service"] == "grok2api" and body["runtime"] == "python-aiohttp"
    assert body["version"]


async def test_request_id_is_echoed_or_made(gateway) -> None:
    client = await gateway(STORE)
    resp = await client.get("/health", headers={"X-Request-Id": "abc-123"})
    assert resp.headers["X-Request-Id"] == "abc-123"
    resp = await client.get("/nowhere", headers={"X-Request-Id": "bad id\twith spaces"})
    assert len(resp.headers["X-Request-Id"]) == 32


async def test_models_list_and_get(gateway) -> None:
    client = await gateway(STORE, EchoPlugin())
    body = await (await client.get("/v1/models")).json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["echo-1"]
    assert {"id", "object", "created", "owned_by"} <= set(body["data"][0])
    one = await client.get("/v1/models/echo-1")
    assert (await one.json())["id"] == "echo-1"
    missing = await client.get("/v1/models/nope")
    assert missing.status == 404
    assert assert_openai_error(await missing.json(), "model_not_found")["param"] == "model"


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/nowhere", 404, "not_found"),
    ("DELETE", "/v1/models", 405, "method_not_allowed"),
])
async def test_routing_errors_are_openai_errors(gateway, method: str, path: str, status: int, code: str) -> None:
    client = await gateway(STORE)
    resp = await client.request(method, path)
    assert resp.status == status
    assert_openai_error(await resp.json(), code)


@pytest.mark.parametrize(("payload", "code", "fragment"), [
    (b'{"model": "echo-1",}', "invalid_json", "Invalid JSON"),
    (b"[1, 2]", "invalid_json", "JSON object"),
    (b"", "empty_body", "empty"),
    (b'{"messages": []}', "missing_model", "'model' is required"),
])
async def test_bad_bodies_name_the_problem(gateway, payload: bytes, code: str, fragment: str) -> None:
    client = await gateway(STORE, EchoPlugin())
    resp = await client.post("/v1/chat/completions", data=payload, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    error = assert_openai_error(await resp.json(), code)
    assert fragment in error["message"]


async def test_dispatch_by_model_and_capability(gateway) -> None:
    client = await gateway(STORE, EchoPlugin())
    ok = await client.post("/v1/chat/completions", json={"model": "echo-1", "messages": []})
    assert ok.status == 200
    assert (await ok.json())["kind"] == "open"  # loopback, no key configured
    unknown = await client.post("/v1/chat/completions", json={"model": "gpt-9"})
    assert unknown.status == 404
    assert_openai_error(await unknown.json(), "model_not_found")
    wrong = await client.post("/v1/images/generations", json={"model": "echo-1", "prompt": "x"})
    assert wrong.status == 400
    assert_openai_error(await wrong.json(), "model_not_supported")


async def test_body_over_the_limit_is_413(gateway, make_settings: Callable[..., Settings]) -> None:
    client = await gateway(STORE, EchoPlugin(), settings=make_settings(app={"max_request_mb": 0.01}))
    resp = await client.post("/v1/chat/completions", data=b"x" * 20_000, headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert_openai_error(await resp.json(), "request_too_large")


async def test_crash_is_a_500_without_detail(gateway) -> None:
    client = await gateway(STORE, CrashPlugin())
    resp = await client.get("/v1/boom")
    assert resp.status == 500
    text = await resp.text()
    assert "hunter2" not in text and "RuntimeError" not in text
    assert_openai_error(await resp.json(), "internal_error")


async def test_plugin_config_section_is_validated(gateway, data_dir: Path, make_settings) -> None:
    (data_dir / "config.toml").write_text("[greeter]\ngreeting = 'hello'\n")
    settings = make_settings()
    await gateway(STORE, ConfiguredPlugin(), settings=settings)
    assert settings.greeter.greeting == "hello" and settings.greeter.times == 1
    (data_dir / "config.toml").write_text("[greeter]\ntimes = 'many'\n")
    with pytest.raises(ConfigError, match="greeter.times"):
        await gateway(STORE, ConfiguredPlugin(), settings=make_settings())


async def test_duplicate_model_names_both_plugins(gateway) -> None:
    with pytest.raises(RegistrationError, match=r"'echo-1'.*'twin'|'echo-1'.*'echo'"):
        await gateway(STORE, EchoPlugin(), TwinPlugin())


async def test_unknown_storage_type_says_which_exist(gateway, make_settings) -> None:
    settings = make_settings(server={"storage_type": "mongo"})
    with pytest.raises(ConfigError, match=r"'mongo'.*available: storage_local|'mongo'.*local"):
        await gateway(STORE, settings=settings)


async def test_disabling_an_unknown_plugin_is_an_error(gateway, make_settings) -> None:
    settings = make_settings(plugins={"disabled": ["chta"]})
    with pytest.raises(ConfigError, match="'chta'"):
        await gateway(STORE, settings=settings)


async def test_disabled_plugin_registers_nothing(gateway, make_settings) -> None:
    client = await gateway(STORE, EchoPlugin(), settings=make_settings(plugins={"disabled": ["echo"]}))
    assert (await (await client.get("/v1/models")).json())["data"] == []


async def test_configured_image_method_must_be_offered(gateway, make_settings) -> None:
    with pytest.raises(ConfigError, match=r"'legacy'.*installed: imagine_ws_experimental"):
        await gateway(STORE, ImageMethodPlugin())
    await gateway(STORE, ImageMethodPlugin(), settings=make_settings(grok={"image_generation_method": "imagine_ws"}))


async def test_v1_is_callable_from_browsers_and_admin_is_not(gateway, make_settings) -> None:
    client = await gateway(STORE, EchoPlugin(), settings=make_settings(app={"api_key": "sk-cors-test-key-000"}))
    preflight = await client.options("/v1/chat/completions", headers={
        "Origin": "https://chat.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"]
    denied = await client.get("/v1/models", headers={"Origin": "https://chat.example"})
    assert denied.status == 401 and denied.headers["Access-Control-Allow-Origin"] == "*"  # errors readable too
    admin = await client.options("/api/v1/admin/plugins", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in admin.headers
