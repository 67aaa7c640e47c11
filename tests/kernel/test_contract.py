"""The plugin contract end to end: a plugin using only ``grok2api.api`` adds a capability with
its own route, a third image method, commands, a request observer and admin pages."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from grok2api.api import (
    Command,
    CommandRegistry,
    ConfigError,
    ConfigRegistry,
    ModelRegistry,
    RegistrationError,
    Section,
    Settings,
    hookimpl,
)
from grok2api.cli.main import main

from .contract_plugin import PAINTER, PNG, ContractPlugin
from .plugins_for_tests import EchoPlugin

STORE = "storage_local"


@pytest.fixture
def flux(make_settings) -> Settings:
    """Settings that pick the contract plugin's image method (the default, legacy, is not installed here)."""
    return make_settings(grok={"image_generation_method": "flux"})


@pytest.fixture
def flux_file(data_dir):
    """The contract plugin beside the installed ones, for the CLI: its own login page would
    meet the admin plugin's, so the admin plugin is off."""
    (data_dir / "config.toml").write_text('[grok]\nimage_generation_method = "flux"\n'
                                          '[plugins]\ndisabled = ["admin"]\n')


async def test_a_plugin_capability_is_dispatched_by_model(gateway, flux) -> None:
    client = await gateway(STORE, ContractPlugin(), settings=flux)
    resp = await client.post("/v1/translations", json={"model": "translator-1", "text": "abc"})
    assert resp.status == 200
    assert await resp.json() == {"model": "translator-1", "capability": "translate", "text": "cba"}


async def test_a_capability_renders_its_errors_in_its_own_shape(gateway, make_settings) -> None:
    client = await gateway(STORE, ContractPlugin(), EchoPlugin(),
                           settings=make_settings(app={"api_key": "sk-contract-key-0000"},
                                                  grok={"image_generation_method": "flux"}))
    auth = {"Authorization": "Bearer sk-contract-key-0000"}
    unauthenticated = await client.post("/v1/translations", json={"model": "translator-1", "text": "x"})
    assert unauthenticated.status == 401
    assert (await unauthenticated.json())["type"] == "error"
    unknown = await client.post("/v1/translations", json={"model": "nope", "text": "x"}, headers=auth)
    assert unknown.status == 404 and (await unknown.json())["error"]["type"] == "not_found_error"
    wrong = await client.post("/v1/translations", json={"model": "echo-1"}, headers=auth)
    assert wrong.status == 400 and "does not support" in (await wrong.json())["error"]["message"]
    bad = await client.post("/v1/translations", json={"model": "translator-1", "text": 1}, headers=auth)
    assert bad.status == 400 and (await bad.json())["error"]["message"] == "'text' must be a string"
    # the other routes keep OpenAI's shape
    chat = await client.post("/v1/chat/completions", json={"model": "translator-1"}, headers=auth)
    assert chat.status == 400 and set((await chat.json())["error"]) == {"message", "type", "param", "code"}


async def test_a_third_image_method_is_selected_by_config(gateway, make_settings) -> None:
    settings = make_settings(grok={"image_generation_method": "FLUX"})
    client = await gateway(STORE, ContractPlugin(), settings=settings)
    resp = await client.post("/v1/images/generations", json={"model": PAINTER.id, "prompt": "a square", "n": 2})
    body = await resp.json()
    assert resp.status == 200, body
    assert body["method"] == "flux" and body["progress_events"] == 2
    assert [base64.b64decode(d["b64_json"]) for d in body["data"]] == [PNG, PNG]


async def test_multipart_edits_reach_the_model_as_fields_and_files(gateway, flux) -> None:
    client = await gateway(STORE, ContractPlugin(), settings=flux)
    form = aiohttp.FormData()
    form.add_field("model", PAINTER.id)
    form.add_field("prompt", "make it blue")
    for name in ("a.png", "b.png"):
        form.add_field("image[]", PNG, filename=name, content_type="image/png")
    resp = await client.post("/v1/images/edits", data=form)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"prompt": "make it blue", "files": [
        {"filename": "a.png", "content_type": "image/png", "size": len(PNG)},
        {"filename": "b.png", "content_type": "image/png", "size": len(PNG)}]}
    not_a_form = await client.post("/v1/images/edits", json={"model": PAINTER.id})
    assert not_a_form.status == 400 and (await not_a_form.json())["error"]["param"] == "body"
    broken = await client.post("/v1/images/edits", data=b"--xyz\r\nbroken",
                               headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert broken.status == 400 and (await broken.json())["error"]["code"] in ("invalid_multipart", "missing_model")


async def test_an_unknown_image_method_stops_start_up_with_the_installed_ones(gateway, make_settings) -> None:
    with pytest.raises(ConfigError, match=r"'dalle'.*installed: flux"):
        await gateway(STORE, ContractPlugin(), settings=make_settings(grok={"image_generation_method": "dalle"}))
    with pytest.raises(ConfigError, match=r"'dalle'.*installed: none"):
        await gateway(STORE, settings=make_settings(grok={"image_generation_method": "dalle"}))


async def test_observers_see_each_request_once_and_cannot_break_it(gateway, flux) -> None:
    plugin = ContractPlugin()
    client = await gateway(STORE, plugin, settings=flux)
    assert (await client.post("/v1/translations", json={"model": "translator-1", "text": "hi"})).status == 200
    assert (await client.get("/v1/models/nope")).status == 404
    assert (await client.get("/health")).status == 200
    first, second, third = plugin.recorder.records
    assert (first.route, first.model, first.capability, first.status) == (
        "/v1/translations", "translator-1", "translate", 200)
    assert first.first_byte_ms is not None and 0 <= first.first_byte_ms <= first.duration_ms
    assert first.key_name == "loopback" and first.error_code is None and len(first.request_id) == 32
    assert (second.route, second.status, second.error_code) == ("/v1/models/{model_id}", 404, "model_not_found")
    assert (third.path, third.key_name) == ("/health", None)


async def test_admin_pages_need_a_session_and_share_one_navigation(gateway, flux) -> None:
    client = await gateway(STORE, ContractPlugin(), settings=flux)
    resp = await client.get("/admin/contract", allow_redirects=False)
    location = urlsplit(resp.headers["Location"])
    assert resp.status == 302 and location.path == "/contract-login"
    assert parse_qs(location.query) == {"next": ["/admin/contract"]}
    assert (await client.get("/contract-login")).status == 200  # public
    token = (await (await client.post("/api/v1/admin/login",
                                      json={"username": "admin", "password": "admin"})).json())["token"]
    page = await client.get("/admin/contract", headers={"Authorization": f"Bearer {token}"})
    assert page.status == 200 and "Contract" in await page.text()
    client.session.cookie_jar.update_cookies({"grok2api_session": token})
    assert (await client.get("/admin/contract")).status == 200
    nav = await client.get("/api/v1/admin/pages", headers={"Authorization": f"Bearer {token}"})
    assert (await nav.json()) == {"pages": [{"path": "/admin/contract", "title": "Contract", "plugin": "contract"}]}
    css = await client.get("/static/contract/site.css")
    assert css.status == 200 and "color" in await css.text()
    assert (await client.get("/static/contract/../contract_plugin.py")).status == 404


def test_plugin_commands_run_with_settings_or_the_started_app(flux_file, capsys) -> None:
    assert main(["contract-hello", "--name", "tester"], plugins=[ContractPlugin()]) == 0
    assert "hello tester from local" in capsys.readouterr().out
    assert main(["contract-models"], plugins=[ContractPlugin()]) == 3
    assert "models" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"], plugins=[ContractPlugin()])
    assert "contract-hello" in capsys.readouterr().out


def test_a_command_name_taken_twice_is_refused(flux_file, capsys) -> None:
    assert main(["contract-hello"], plugins=[ContractPlugin(), Again()]) == 2
    error = capsys.readouterr().err
    assert "'contract-hello' is already registered by plugin 'contract'" in error or \
        "'contract-hello' is already registered by plugin 'again'" in error


class Again:
    plugin_name = "again"

    @hookimpl
    def grok2api_register_commands(self, commands: CommandRegistry) -> None:
        commands.add(Command("contract-hello", "again", run=lambda args, settings: 0))


class Wrapping:
    """A ``wrapper=True`` implementation runs around the others, as pluggy documents."""

    plugin_name = "wrapping"

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl(wrapper=True)
    def grok2api_register_models(self, models: ModelRegistry, settings: Settings):  # type: ignore[no-untyped-def]
        self.seen.append(f"before:{len(models.models)}")
        result = yield
        self.seen.append(f"after:{sorted(models.models)}")
        return result


async def test_hooks_are_called_through_pluggy_wrappers_included(gateway) -> None:
    wrapping = Wrapping()
    await gateway(STORE, EchoPlugin(), wrapping)
    assert wrapping.seen == ["before:0", "after:['echo-1']"]


class Exploding:
    plugin_name = "exploding"

    @hookimpl
    def grok2api_register_filters(self) -> None:
        raise KeyError("oops")


async def test_a_crash_inside_a_hook_names_the_plugin(gateway) -> None:
    with pytest.raises(RegistrationError, match=r"plugin 'exploding': grok2api_register_filters failed"):
        await gateway(STORE, EchoPlugin(), Exploding())


async def test_registration_hooks_see_validated_settings(gateway, data_dir) -> None:
    (data_dir / "config.toml").write_text("[grok]\nfilter_tags = ['only-this']\n")
    seen: list[list[str]] = []

    class Peek:
        plugin_name = "peek"

        @hookimpl
        def grok2api_register_filters(self, settings: Settings) -> None:
            seen.append(settings.grok.filter_tags)

    await gateway(STORE, Peek())
    assert seen == [["only-this"]]



class VideoLike:
    """Claims an original kernel key, as the video plugin does with ``grok.video_poster_preview``."""

    plugin_name = "videolike"

    @hookimpl
    def grok2api_add_config(self, config: ConfigRegistry) -> None:
        config.add_section("videolike", PosterSection, moved={"grok.video_poster_preview": "poster_preview"})


class PosterSection(Section):
    poster_preview: bool = False


async def test_original_key_names_reach_the_plugin_that_took_them_over(gateway, data_dir, make_settings) -> None:
    (data_dir / "config.toml").write_text("[grok]\nvideo_poster_preview = true\n")
    settings = make_settings()
    await gateway(STORE, VideoLike(), settings=settings)
    assert settings.videolike.poster_preview is True  # type: ignore[attr-defined]
    (data_dir / "config.toml").write_text("[grok]\nvideo_poster_preview = true\n[videolike]\nposter_preview = false\n")
    settings = make_settings()
    await gateway(STORE, VideoLike(), settings=settings)
    assert settings.videolike.poster_preview is False  # type: ignore[attr-defined]  (the new name wins)
    await gateway(STORE, settings=make_settings())  # unclaimed: a warning, not an error
    (data_dir / "config.toml").write_text("[grok]\ntimeuot = 5\n")
    with pytest.raises(ConfigError, match="grok.timeuot: unknown key"):
        await gateway(STORE, settings=make_settings())
