"""Settings: the original's keys and defaults, sources and their order, legacy merge, validation."""

from pathlib import Path

import pytest

from grok2api.config.settings import (
    PLUGIN_OWNED_KEYS,
    SECTIONS,
    ConfigError,
    Settings,
    apply_update,
    load_settings,
    masked,
    normalize_image_method,
)

ORIGINAL_DEFAULTS = {
    "grok.temporary": True, "grok.thinking": True, "grok.dynamic_statsig": True,
    "grok.filter_tags": ["xaiartifact", "xai:tool_usage_card", "grok:render"],
    "grok.video_poster_preview": False, "grok.timeout": 120, "grok.base_proxy_url": "",
    "grok.asset_proxy_url": "", "grok.cf_clearance": "", "grok.max_retry": 3,
    "grok.retry_status_codes": [401, 429, 403], "grok.image_generation_method": "legacy",
    "app.app_url": "http://127.0.0.1:8000", "app.admin_username": "admin", "app.app_key": "admin",
    "app.api_key": "", "app.image_format": "url", "app.video_format": "url",
    "token.auto_refresh": True, "token.refresh_interval_hours": 8, "token.fail_threshold": 5,
    "token.save_delay_ms": 500, "token.reload_interval_sec": 30,
    "cache.enable_auto_clean": True, "cache.limit_mb": 1024, "cache.keep_base64_cache": True,
    "performance.assets_max_concurrent": 25, "performance.media_max_concurrent": 50,
    "performance.usage_max_concurrent": 25, "performance.assets_delete_batch_size": 10,
    "performance.admin_assets_batch_size": 10,
}


def value(settings: Settings, dotted: str) -> object:
    section, key = dotted.split(".")
    return getattr(getattr(settings, section), key)


def test_every_original_key_keeps_its_default(data_dir: Path) -> None:
    settings = load_settings()
    for dotted, default in ORIGINAL_DEFAULTS.items():
        if dotted in PLUGIN_OWNED_KEYS:  # their plugins keep these defaults (tested there)
            continue
        assert value(settings, dotted) == default, dotted
    # the one deliberate change: omitting `stream` means no streaming, as with OpenAI
    assert settings.grok.stream is False
    assert settings.data_dir == data_dir


def test_sources_in_order(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (data_dir / "config.toml").write_text('[grok]\ntimeout = 30\nmax_retry = 1\n[app]\napi_key = "file-key"\n')
    monkeypatch.setenv("GROK2API_GROK__MAX_RETRY", "2")
    monkeypatch.setenv("GROK2API_GROK__RETRY_STATUS_CODES", "[429]")
    monkeypatch.setenv("SERVER_PORT", "9001")
    monkeypatch.setenv("SERVER_STORAGE_TYPE", "REDIS")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = load_settings()
    assert settings.grok.timeout == 30  # file over default
    assert settings.grok.max_retry == 2  # environment over file
    assert settings.grok.retry_status_codes == [429]
    assert settings.app.api_key == "file-key"
    assert settings.server.port == 9001 and settings.server.storage_type == "redis"
    assert settings.log_level == "DEBUG"


def test_invalid_value_names_key_and_accepted_values(data_dir: Path) -> None:
    (data_dir / "config.toml").write_text('[app]\nimage_format = "gif"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "app.image_format" in str(caught.value)
    assert "'url', 'base64' or 'b64_json'" in str(caught.value)


def test_unknown_key_in_a_section_is_set_aside_for_the_plugins(data_dir: Path) -> None:
    (data_dir / "config.toml").write_text("[grok]\ntimeuot = 5\n")
    assert load_settings().unclaimed_keys == {"grok.timeuot": 5}  # the app refuses it unless a plugin takes it


def test_broken_toml_is_reported(data_dir: Path) -> None:
    (data_dir / "config.toml").write_text("[grok\n")
    with pytest.raises(ConfigError, match="config.toml: not valid TOML"):
        load_settings()


def test_legacy_setting_toml_fills_missing_and_default_keys(data_dir: Path) -> None:
    (data_dir / "config.toml").write_text('[app]\napp_url = "https://kept.example"\napp_key = "grok2api"\n')
    (data_dir / "setting.toml").write_text(
        "[global]\n"
        'base_url = "https://legacy.example"\nadmin_username = "root"\nadmin_password = "s3cret"\n'
        'image_mode = "base64"\nimage_cache_max_size_mb = 300\nvideo_cache_max_size_mb = 200\n'
        "[grok]\n"
        'api_key = "sk-legacy"\nproxy_url = "socks5://127.0.0.1:1080"\ncache_proxy_url = "http://127.0.0.1:3128"\n'
        'cf_clearance = "clear"\ntemporary = false\ndynamic_statsig = false\nshow_thinking = false\n'
        'filtered_tags = "a, b ,c"\nstream_total_timeout = 0\nstream_chunk_timeout = 45\n'
        "retry_status_codes = [429]\n"
    )
    s = load_settings()
    assert s.app.app_url == "https://kept.example"  # set in config.toml: kept
    assert s.app.app_key == "s3cret"  # the old default "grok2api" counts as default
    assert s.app.admin_username == "root"
    assert s.app.api_key == "sk-legacy"
    assert s.app.image_format == "base64"
    assert s.grok.base_proxy_url == "socks5://127.0.0.1:1080"
    assert s.grok.asset_proxy_url == "http://127.0.0.1:3128"
    grok = s.grok
    assert (grok.cf_clearance, grok.temporary, grok.dynamic_statsig, grok.thinking) == ("clear", False, False, False)
    assert s.grok.filter_tags == ["a", "b", "c"]
    assert s.grok.timeout == 45
    assert s.grok.retry_status_codes == [429]
    assert s.cache.limit_mb == 500
    assert (data_dir / "setting.toml").exists()  # never deleted


@pytest.mark.parametrize(("raw", "expected"), [
    ("legacy", "legacy"), ("imagine_ws_experimental", "imagine_ws_experimental"),
    ("imagine_ws", "imagine_ws_experimental"), ("experimental", "imagine_ws_experimental"),
    ("NEW", "imagine_ws_experimental"), ("new_method", "imagine_ws_experimental"),
    (" Flux ", "flux"), ("", ""), (None, ""),
])
def test_image_method_aliases(raw: object, expected: str) -> None:
    assert normalize_image_method(raw) == expected


def test_image_method_alias_in_config(data_dir: Path) -> None:
    (data_dir / "config.toml").write_text('[grok]\nimage_generation_method = "imagine_ws"\n')
    assert load_settings().grok.image_generation_method == "imagine_ws_experimental"


def test_run_time_update_validates_whole_change_first(data_dir: Path) -> None:
    settings = load_settings()
    apply_update(settings, {"grok": {"timeout": 5}}, SECTIONS)
    assert settings.grok.timeout == 5
    with pytest.raises(ConfigError, match="grok.max_retry"):
        apply_update(settings, {"app": {"api_key": "new"}, "grok": {"max_retry": -1}}, SECTIONS)
    assert settings.app.api_key == ""  # nothing applied
    with pytest.raises(ConfigError, match="unknown config section"):
        apply_update(settings, {"register": {"x": 1}}, SECTIONS)


def test_masked_hides_secrets(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROK2API_APP__API_KEY", "sk-very-secret-key-123456")
    monkeypatch.setenv("GROK2API_GROK__CF_CLEARANCE", "clearance-value-abcdefgh")
    dump = masked(load_settings())
    assert "sk-very-secret-key-123456" not in str(dump)
    assert "clearance-value-abcdefgh" not in str(dump)
    assert dump["app"]["app_key"] == "***n"  # "admin": its last quarter


def test_out_of_scope_keys_of_the_original_are_ignored(data_dir: Path) -> None:
    (data_dir / "config.toml").write_text(
        "[token]\nnsfw_refresh_concurrency = 10\nnsfw_refresh_retries = 3\nfail_threshold = 4\n"
        '[register]\nsolver_url = "http://127.0.0.1:5072"\n'
    )
    settings = load_settings()
    assert settings.token.fail_threshold == 4
    assert "register" not in settings.extra_sections


def test_impersonate_must_be_a_concrete_browser_target(data_dir: Path) -> None:
    (data_dir / "config.toml").write_text('[grok]\nimpersonate = "chrome"\n')
    with pytest.raises(ConfigError, match="grok.impersonate: .*browser target"):
        load_settings()
    (data_dir / "config.toml").write_text('[grok]\nimpersonate = "chrome136"\n')
    assert load_settings().grok.impersonate == "chrome136"



def test_the_request_log_flush_interval_is_bounded(data_dir: Path) -> None:
    for value in (0, 120_000):  # 0 would write in a loop; minutes would make a crash lose minutes
        (data_dir / "config.toml").write_text(f"[performance]\nrequest_log_flush_ms = {value}\n")
        with pytest.raises(ConfigError, match="performance.request_log_flush_ms"):
            load_settings()
    (data_dir / "config.toml").write_text("[performance]\nrequest_log_flush_ms = 250\n")
    assert load_settings().performance.request_log_flush_ms == 250
