"""Settings: built-in defaults < ``data/config.toml`` (+ legacy ``setting.toml``) < environment.

Every key of the original product keeps its name and default (one deliberate change:
``grok.stream`` defaults to false, as OpenAI does). Plugins add typed sections of their
own; :func:`apply_update` validates run-time changes with the same models.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from grok2api.logs.logger import logger, mask_secret

#: the original's other names for the built-in image methods (``grok.image_generation_method``)
IMAGE_METHOD_ALIASES = {
    "imagine_ws": "imagine_ws_experimental",
    "experimental": "imagine_ws_experimental",
    "new": "imagine_ws_experimental",
    "new_method": "imagine_ws_experimental",
}

#: keys of the original's kernel sections that now belong to plugin sections (each plugin
#: claims its own with ``add_section(..., moved=...)``); unclaimed, they are ignored with a warning
PLUGIN_OWNED_KEYS = frozenset({
    "grok.video_poster_preview",
    "performance.media_max_concurrent",
    "performance.assets_delete_batch_size",
    "performance.admin_assets_batch_size",
})


def normalize_image_method(value: object) -> str:
    """Lower-case and trimmed, with the original's aliases resolved; any other name stays
    as it is, for the app to check against the installed methods."""
    text = str(value or "").strip().lower()
    return IMAGE_METHOD_ALIASES.get(text, text)


class Section(BaseModel):
    """A config section: unknown keys are refused so typos surface at start-up."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AppSettings(Section):
    app_url: str = "http://127.0.0.1:8000"
    admin_username: str = "admin"
    app_key: str = "admin"
    api_key: str = ""
    image_format: Literal["url", "base64", "b64_json"] = "url"
    video_format: Literal["url", "base64"] = "url"
    max_request_mb: float = Field(20, gt=0, description="largest request body accepted (413 above)")
    trusted_proxies: list[str] = Field(
        [], description="reverse proxies (addresses or CIDR networks) whose Forwarded / X-Forwarded-For / "
        "X-Real-IP headers name the client")

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                network = ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an address or CIDR network such as 10.0.0.0/8") from None
            if network.prefixlen == 0:
                raise ValueError(f"{item!r} trusts every address; name your proxies")
        return value


class GrokSettings(Section):
    temporary: bool = True
    stream: bool = False
    thinking: bool = True
    dynamic_statsig: bool = True
    statsig_id: str = Field("", description="static x-statsig-id when dynamic_statsig is off")
    filter_tags: list[str] = ["xaiartifact", "xai:tool_usage_card", "grok:render"]
    timeout: float = Field(120, gt=0, description="total upstream timeout, seconds")
    connect_timeout: float = Field(10, gt=0)
    first_byte_timeout: float = Field(60, gt=0)
    idle_timeout: float = Field(60, gt=0, description="largest gap between stream frames")
    base_proxy_url: str = ""
    asset_proxy_url: str = ""
    cf_clearance: str = ""
    max_retry: int = Field(3, ge=0)
    retry_status_codes: list[int] = [401, 429, 403]
    image_generation_method: str = "legacy"
    base_url: str = "https://grok.com"
    assets_url: str = "https://assets.grok.com"
    impersonate: str = "chrome136"
    max_connections: int = Field(
        64, ge=1, description="upstream HTTP requests in flight at once (a change applies at once), "
        "and WebSockets per proxy session (a change applies to sessions opened afterwards)")

    @field_validator("image_generation_method", mode="before")
    @classmethod
    def _method(cls, value: object) -> str:
        return normalize_image_method(value)

    @field_validator("impersonate")
    @classmethod
    def _browser(cls, value: str) -> str:
        from curl_cffi import BrowserType  # here, not at import: the CLI's --help never loads curl_cffi

        targets = {b.value for b in BrowserType}
        if value not in targets:
            chrome = sorted((t for t in targets if t.startswith("chrome")), key=len)[-3:]
            raise ValueError(f"must be a browser target of curl_cffi, such as {', '.join(chrome)}")
        return value

    @field_validator("base_url", "assets_url")
    @classmethod
    def _origin(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class TokenSettings(Section):
    auto_refresh: bool = True
    refresh_interval_hours: float = Field(8, gt=0)
    fail_threshold: int = Field(5, ge=1)
    save_delay_ms: int = Field(500, ge=0)
    reload_interval_sec: float = 30
    cooldown_base_sec: float = Field(60, gt=0, description="first rate-limit cooldown")
    cooldown_max_sec: float = Field(3600, gt=0, description="cap of the exponential cooldown")
    soft_cooldown_sec: float = Field(5, ge=0, description="pause after a 5xx or network error")
    max_inflight_per_account: int = Field(4, ge=1)
    sync_after_use: bool = Field(True, description="ask Grok for the account's quota after each successful request")
    sync_min_interval_sec: float = Field(
        10, ge=0, description="least time between two such syncs of one account; the local estimate carries between")


class CacheSettings(Section):
    enable_auto_clean: bool = True
    limit_mb: float = Field(1024, gt=0)
    keep_base64_cache: bool = True


class PerformanceSettings(Section):
    assets_max_concurrent: int = Field(25, ge=1)
    usage_max_concurrent: int = Field(25, ge=1)
    request_log_flush_ms: int = Field(
        1000, ge=50, le=60_000, description="how often the request log and hourly counts are written; "
        "a crash loses at most the requests that finished in the last interval")


class ServerSettings(Section):
    """Process settings, from ``SERVER_*`` variables (or ``[server]`` in config.toml)."""

    host: str = "0.0.0.0"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    storage_type: str = "local"
    storage_url: str = ""
    shutdown_grace_sec: float = Field(
        20, ge=0, description="on SIGTERM, how long requests in flight may still run before they are ended "
        "(streams with an error event); keep it under the orchestrator's kill timeout")
    header_timeout_sec: float = Field(
        30, gt=0, description="longest wait for a request's headers, also how long an idle keep-alive "
        "connection stays open (a reverse proxy's idle timeout towards the gateway must be shorter)")
    body_timeout_sec: float = Field(60, gt=0, description="longest wait for a whole request body (408 past it); "
                                    "answers, streamed ones included, are not bounded by it")

    @field_validator("storage_type", mode="before")
    @classmethod
    def _lower(cls, value: object) -> str:
        return str(value or "local").strip().lower()


class PluginsSettings(Section):
    disabled: list[str] = []


SECTIONS: dict[str, type[Section]] = {
    "app": AppSettings,
    "grok": GrokSettings,
    "token": TokenSettings,
    "cache": CacheSettings,
    "performance": PerformanceSettings,
    "server": ServerSettings,
    "plugins": PluginsSettings,
}

#: keys whose values never leave the process unmasked
SECRET_KEYS = frozenset(
    {"app.app_key", "app.api_key", "grok.cf_clearance", "grok.statsig_id", "server.storage_url",
     "grok.base_proxy_url", "grok.asset_proxy_url"}
)


class ConfigError(Exception):
    """Invalid configuration; the message names the key and what it accepts."""


class Settings(BaseSettings):
    """All settings of one gateway process.

    Sections are assigned whole on run-time changes, so anything holding this object
    sees the new values at once. Plugin sections live in :attr:`extra_sections` until
    the app validates them against the models the plugins declare.
    """

    model_config = SettingsConfigDict(extra="allow", validate_assignment=True)

    app: AppSettings = AppSettings()
    grok: GrokSettings = GrokSettings()
    token: TokenSettings = TokenSettings()
    cache: CacheSettings = CacheSettings()
    performance: PerformanceSettings = PerformanceSettings()
    server: ServerSettings = ServerSettings()
    plugins: PluginsSettings = PluginsSettings()
    log_level: str = "INFO"
    data_dir: Path = Path("data")
    #: ``"section.key"`` values of kernel sections that no kernel field takes, set aside
    #: for the plugin sections that claim them (see :data:`PLUGIN_OWNED_KEYS`)
    unclaimed_keys: dict[str, Any] = Field(default_factory=dict, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _set_aside_unknown_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data, unclaimed = dict(data), dict(data.get("unclaimed_keys") or {})
        for name, model in SECTIONS.items():
            table = data.get(name)
            if not isinstance(table, dict):
                continue
            unknown = [key for key in table if key not in model.model_fields]
            for key in unknown:
                unclaimed[f"{name}.{key}"] = table[key]
            if unknown:
                data[name] = {k: v for k, v in table.items() if k not in unknown}
        data["unclaimed_keys"] = unclaimed
        return data

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, value: object) -> str:
        level = str(value or "INFO").upper()
        if level not in {"TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of TRACE, DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @property
    def extra_sections(self) -> dict[str, Any]:
        """Raw tables of config.toml that no kernel section claims (plugin sections)."""
        return dict(self.__pydantic_extra__ or {})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _EnvironmentSource(settings_cls), _FileSource(settings_cls))


_ENV_KEYS = {
    "SERVER_HOST": ("server", "host"),
    "SERVER_PORT": ("server", "port"),
    "SERVER_WORKERS": ("server", "workers"),
    "SERVER_STORAGE_TYPE": ("server", "storage_type"),
    "SERVER_STORAGE_URL": ("server", "storage_url"),
}
_ENV_PREFIX = "GROK2API_"


def _data_dir() -> Path:
    return Path(os.environ.get("DATA_DIR") or "data")


class _FileSource(PydanticBaseSettingsSource):
    """``data/config.toml`` with the legacy ``data/setting.toml`` merged in."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is overridden

    def __call__(self) -> dict[str, Any]:
        return load_file_config(_data_dir())


class _EnvironmentSource(PydanticBaseSettingsSource):
    """``SERVER_*``, ``LOG_LEVEL``, ``DATA_DIR`` and ``GROK2API_<SECTION>__<KEY>``."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ is overridden

    def __call__(self) -> dict[str, Any]:
        return environment_config(os.environ)


def environment_config(environ: dict[str, str] | os._Environ[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, (section, key) in _ENV_KEYS.items():
        if environ.get(name):
            out.setdefault(section, {})[key] = environ[name]
    if environ.get("LOG_LEVEL"):
        out["log_level"] = environ["LOG_LEVEL"]
    if environ.get("DATA_DIR"):
        out["data_dir"] = environ["DATA_DIR"]
    if environ.get("GROK2API_DISABLE_PLUGINS") is not None:
        names = [n.strip() for n in environ["GROK2API_DISABLE_PLUGINS"].split(",") if n.strip()]
        out.setdefault("plugins", {})["disabled"] = names
    for name, value in environ.items():
        if not name.startswith(_ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(_ENV_PREFIX):].lower().partition("__")
        out.setdefault(section, {})[key] = _env_value(value)
    return out


def _env_value(text: str) -> Any:
    """Environment values are strings; lists and tables may be written as TOML values."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def load_file_config(data_dir: Path) -> dict[str, Any]:
    """Read ``config.toml`` and merge a legacy ``setting.toml`` by the original's rule."""
    config: dict[str, Any] = {}
    path = data_dir / "config.toml"
    if path.is_file():
        try:
            config = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    _drop_out_of_scope(config)
    legacy = data_dir / "setting.toml"
    if legacy.is_file():
        try:
            merge_legacy_settings(config, tomllib.loads(legacy.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{legacy}: not valid TOML: {exc}") from exc
    return config


#: keys of the original's account-registration subsystem, which grok2api never builds
_OUT_OF_SCOPE = {"register": None, "token": ("nsfw_refresh_concurrency", "nsfw_refresh_retries")}


def _drop_out_of_scope(config: dict[str, Any]) -> None:
    """An original config.toml carries these; they are ignored, not an error."""
    for section, keys in _OUT_OF_SCOPE.items():
        table = config.get(section)
        if not isinstance(table, dict):
            continue
        dropped = list(table) if keys is None else [k for k in keys if k in table]
        for key in dropped:
            table.pop(key)
        if keys is None:
            config.pop(section)
        if dropped:
            logger.warning("config: ignoring out-of-scope keys {}", ", ".join(f"{section}.{k}" for k in dropped))


def _legacy_mapping(old: dict[str, Any]) -> dict[tuple[str, str], Any]:
    glob, grok = old.get("global", {}) or {}, old.get("grok", {}) or {}
    pairs: dict[tuple[str, str], Any] = {}

    def take(src: dict[str, Any], key: str, dest: tuple[str, str]) -> None:
        if key in src and src[key] not in (None, ""):
            pairs[dest] = src[key]

    take(glob, "base_url", ("app", "app_url"))
    take(glob, "admin_username", ("app", "admin_username"))
    take(glob, "admin_password", ("app", "app_key"))
    take(grok, "api_key", ("app", "api_key"))
    take(glob, "image_mode", ("app", "image_format"))
    take(grok, "proxy_url", ("grok", "base_proxy_url"))
    take(grok, "cache_proxy_url", ("grok", "asset_proxy_url"))
    for same in ("cf_clearance", "temporary", "dynamic_statsig"):
        take(grok, same, ("grok", same))
    take(grok, "show_thinking", ("grok", "thinking"))
    if isinstance(grok.get("filtered_tags"), str) and grok["filtered_tags"].strip():
        pairs[("grok", "filter_tags")] = [t.strip() for t in grok["filtered_tags"].split(",") if t.strip()]
    timeout = grok.get("stream_total_timeout") or grok.get("stream_chunk_timeout")
    if isinstance(timeout, (int, float)) and timeout > 0:
        pairs[("grok", "timeout")] = timeout
    if isinstance(grok.get("retry_status_codes"), list) and grok["retry_status_codes"]:
        pairs[("grok", "retry_status_codes")] = grok["retry_status_codes"]
    sizes = [glob.get(k) for k in ("image_cache_max_size_mb", "video_cache_max_size_mb")]
    if any(isinstance(s, (int, float)) for s in sizes):
        pairs[("cache", "limit_mb")] = max(1, sum(s for s in sizes if isinstance(s, (int, float))))
    return pairs


def merge_legacy_settings(config: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """Fill keys that are missing or still at their default; ``grok2api`` counts as the old default app_key."""
    for (section, key), value in _legacy_mapping(old).items():
        table = config.setdefault(section, {})
        default = SECTIONS[section].model_fields[key].default
        current = table.get(key, default)
        if key not in table or current == default or (section, key, current) == ("app", "app_key", "grok2api"):
            table[key] = value
    return config


def describe_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per problem: the dotted key, what is wrong, and the accepted values."""
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        ctx = err.get("ctx") or {}
        accepted = f" (accepted: {ctx['expected']})" if "expected" in ctx else ""
        lines.append(f"{key}: {err['msg']}{accepted}, got {err.get('input')!r}")
    return "; ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from every source; a bad value raises :class:`ConfigError`."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {describe_error(exc)}") from exc


def apply_update(settings: Settings, update: dict[str, dict[str, Any]], sections: dict[str, type[BaseModel]]) -> None:
    """Validate ``{section: {key: value}}`` with the section models, then swap whole sections in.

    Nothing is assigned unless every section validates, so a bad change leaves the
    settings as they were.
    """
    staged: dict[str, BaseModel] = {}
    for name, values in update.items():
        model = sections.get(name)
        if model is None:
            raise ConfigError(f"{name}: unknown config section")
        if not isinstance(values, dict):
            raise ConfigError(f"{name}: expected a table of keys")
        current = getattr(settings, name, None)
        base = current.model_dump() if isinstance(current, BaseModel) else {}
        try:
            staged[name] = model.model_validate({**base, **values})
        except ValidationError as exc:
            raise ConfigError(describe_error(exc, name)) from exc
    for name, value in staged.items():
        setattr(settings, name, value)


def _write_only(settings: Settings) -> set[str]:
    """Keys a section's model marks ``writeOnly`` (a plugin's secrets, such as webhook URLs)."""
    found = set()
    for name in type(settings).model_fields | (settings.model_extra or {}):
        section = getattr(settings, name, None)
        for key, info in (type(section).model_fields.items() if isinstance(section, BaseModel) else ()):
            extra = info.json_schema_extra
            if isinstance(extra, dict) and extra.get("writeOnly"):
                found.add(f"{name}.{key}")
    return found


def masked(settings: Settings) -> dict[str, Any]:
    """Every setting as a plain dict with secrets (the kernel's and every ``writeOnly`` field)
    replaced by ``***``."""
    data = settings.model_dump(mode="json")
    for dotted in SECRET_KEYS | _write_only(settings):
        section, key = dotted.split(".")
        if data.get(section, {}).get(key):
            data[section][key] = mask_secret(str(data[section][key]))
    return data
