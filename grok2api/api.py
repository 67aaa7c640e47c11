"""The plugin API: everything a plugin may import from the kernel, in one place.

``from grok2api import hookimpl`` marks hook implementations (cheap to import, for a
plugin's ``hooks.py``); everything else comes from here. Names outside this module
are the kernel's own business and may change without notice. ``docs/plugins.md``
describes each group; the test kit for plugin authors is :mod:`grok2api.testing`.
"""

from grok2api import __version__, hookimpl
from grok2api.config.runtime import save as save_config
from grok2api.config.settings import (
    SECRET_KEYS,
    CacheSettings,
    ConfigError,
    GrokSettings,
    Section,
    ServerSettings,
    Settings,
    environment_config,
    load_file_config,
    load_settings,
)
from grok2api.ids import account_id, random_hex, random_uuid
from grok2api.keys.charges import Reservation
from grok2api.keys.limits import InvalidKeyField
from grok2api.keys.service import Identity, KeyExists, KeyNotFound, QuotaExceeded, key_id
from grok2api.logs.logger import logger, mask_secret, mask_text
from grok2api.logs.request_log import CAPABILITY, COMPLETION_TOKENS, MODEL_ID, PROMPT_TOKENS
from grok2api.media.cache import MediaCache, cache_name
from grok2api.plugin.filters import ChainStream, FilterChain, ResponseFilter, StreamFilter
from grok2api.plugin.registries import (
    AdminPage,
    AdminPageRegistry,
    AppCommandRunner,
    BodyReader,
    Capability,
    CapabilityRegistry,
    CleanupContext,
    Command,
    CommandRegistry,
    CommandRunner,
    ConfigRegistry,
    ErrorRenderer,
    FilterRegistry,
    Handler,
    ImageEvent,
    ImageMethod,
    ImageMethodRegistry,
    ImagePartial,
    ImageReady,
    ImageRequest,
    ModelRegistry,
    ModelRequest,
    ModelSpec,
    ObserverRegistry,
    RegistrationError,
    RequestObserver,
    RequestRecord,
    StaticFiles,
    StorageFactory,
    StorageRegistry,
)
from grok2api.pool import POOL_BASIC, POOL_SUPER, Account, Lease, LeasedStream, TokenPool
from grok2api.pool.errors import AccountNotFound, NoAccountAvailable
from grok2api.pool.files import parse_tokens, tokens_json, tokens_text
from grok2api.storage import (
    JSON,
    MAX_FIELD_LEN,
    MAX_KEY_LEN,
    NS_SESSIONS,
    Change,
    LogEntry,
    Storage,
    StorageError,
    check_name,
    check_ns,
    decode,
    encode,
    feed_reset,
    now_ms,
)
from grok2api.storage.feed import FeedWaiter
from grok2api.storage.sql import SqlStorage, parse_sql_url
from grok2api.upstream import (
    CardAttachment,
    ChatRequest,
    ConversationStarted,
    Event,
    Failure,
    GrokClient,
    ImageProgress,
    ImagineEvent,
    ImagineImage,
    ImagineSlotDone,
    ImagineSlotStarted,
    InStreamError,
    ModelResponse,
    ResponseMeta,
    TextDelta,
    UpstreamError,
    VideoProgress,
    WebSearchResults,
    http_status,
)
from grok2api.web.app import config_sections, create_app
from grok2api.web.appkeys import (
    FILTERS,
    KEYS,
    MEDIA,
    OBSERVERS,
    PLUGIN_MANAGER,
    POOL,
    REGISTRIES,
    REQUEST_LOG,
    SESSIONS,
    SETTINGS,
    STORAGE,
    UPSTREAM,
)
from grok2api.web.auth import IDENTITY, SESSION_COOKIE, AdminSessions, api_key_route, bearer
from grok2api.web.body import UploadedFile, read_json, read_multipart
from grok2api.web.clients import client_address, is_loopback
from grok2api.web.errors import ApiError, from_domain, invalid, upstream_error
from grok2api.web.outbound import FetchRefused, GuardedResolver, address_refusal, check_fetch_url
from grok2api.web.pages import has_admin_session

__all__ = [
    # hooks, registries and what they hold
    "hookimpl", "AdminPage", "AdminPageRegistry", "AppCommandRunner", "BodyReader", "Capability",
    "CapabilityRegistry", "CleanupContext", "Command", "CommandRegistry", "CommandRunner", "ConfigRegistry",
    "ErrorRenderer", "FilterRegistry", "Handler", "ImageEvent", "ImageMethod", "ImageMethodRegistry",
    "ImagePartial", "ImageReady", "ImageRequest", "ModelRegistry", "ModelRequest", "ModelSpec", "ObserverRegistry",
    "RegistrationError", "RequestObserver", "RequestRecord", "StaticFiles", "StorageFactory", "StorageRegistry",
    # the app and what it holds
    "__version__", "create_app", "FILTERS", "KEYS", "MEDIA", "OBSERVERS", "PLUGIN_MANAGER", "POOL", "REGISTRIES",
    "REQUEST_LOG", "SESSIONS", "SETTINGS", "STORAGE", "UPSTREAM", "IDENTITY", "CAPABILITY", "MODEL_ID",
    "PROMPT_TOKENS", "COMPLETION_TOKENS",
    "SESSION_COOKIE", "AdminSessions", "bearer", "api_key_route", "client_address", "is_loopback",
    # requests and errors
    "ApiError", "invalid", "from_domain", "upstream_error", "read_json", "read_multipart", "UploadedFile",
    "has_admin_session",
    # requests the gateway makes itself
    "FetchRefused", "GuardedResolver", "address_refusal", "check_fetch_url",
    # configuration
    "CacheSettings", "ConfigError", "GrokSettings", "Section", "ServerSettings", "Settings", "load_settings",
    "SECRET_KEYS", "config_sections", "save_config", "environment_config", "load_file_config",
    # filters, logging, ids
    "ChainStream", "FilterChain", "ResponseFilter", "StreamFilter", "logger", "mask_secret", "mask_text",
    "random_hex", "random_uuid",
    # API keys, the pool, the media cache
    "Identity", "QuotaExceeded", "KeyExists", "KeyNotFound", "key_id", "Reservation", "InvalidKeyField",
    "Account", "Lease", "LeasedStream", "TokenPool", "POOL_BASIC", "POOL_SUPER", "AccountNotFound",
    "NoAccountAvailable", "account_id", "MediaCache", "cache_name", "parse_tokens", "tokens_json", "tokens_text",
    # storage engines
    "JSON", "MAX_FIELD_LEN", "MAX_KEY_LEN", "NS_SESSIONS", "Change", "LogEntry", "Storage", "StorageError",
    "check_name", "check_ns", "decode", "encode", "feed_reset", "now_ms", "FeedWaiter", "SqlStorage", "parse_sql_url",
    # the Grok client
    "CardAttachment", "ChatRequest", "ConversationStarted", "Event", "Failure", "GrokClient", "ImageProgress",
    "ImagineEvent", "ImagineImage", "ImagineSlotDone", "ImagineSlotStarted", "InStreamError", "ModelResponse",
    "ResponseMeta", "TextDelta", "UpstreamError", "VideoProgress", "WebSearchResults", "http_status",
]
