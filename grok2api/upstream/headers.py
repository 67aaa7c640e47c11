"""The browser header set grok.com expects (protocol §2.2, §2.5), the SSO cookie and
``x-statsig-id`` (§2.4).

The User-Agent and client hints follow the Chrome version of ``grok.impersonate`` so the
headers never contradict the TLS fingerprint curl_cffi presents.
"""

from __future__ import annotations

import base64
import functools
import random
import re
import string

from grok2api.config.settings import GrokSettings
from grok2api.ids import random_uuid

DEFAULT_CHROME = 136
_CHROME_TARGET = re.compile(r"(?:chrome|edge)(\d+)")
_STATIC_STATSIG = "TypeError: Cannot read properties of undefined (reading 'childNodes')"
_NAVIGATION_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
                      "image/webp,*/*;q=0.8")


def normalize_sso(token: str) -> str:
    """The bare token, whether operators pasted it bare, as ``sso=<t>`` or as a whole
    cookie string."""
    text = token.strip()
    if "=" in text:
        for part in text.split(";"):
            name, _, value = part.strip().partition("=")
            if name == "sso":
                return value.strip()
    return text


def cookie_header(token: str, cf_clearance: str) -> str:
    """``sso=<t>; sso-rw=<t>`` plus the Cloudflare clearance (a bare value or cookie pairs)."""
    sso = normalize_sso(token)
    cookie = f"sso={sso}; sso-rw={sso}"
    clearance = cf_clearance.strip()
    if clearance:
        cookie += f"; {clearance}" if "=" in clearance else f"; cf_clearance={clearance}"
    return cookie


def statsig_id(grok: GrokSettings, prefix: str) -> str:
    """A fresh "statsig evaluation failed" id (dynamic), else the configured static value,
    else the static fallback; ``prefix`` is the dialect's (``e:`` in Feb 2026)."""
    if not grok.dynamic_statsig:
        if grok.statsig_id:
            return grok.statsig_id
        text = prefix + _STATIC_STATSIG
    elif random.random() < 0.5:
        key = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
        text = f"{prefix}TypeError: Cannot read properties of null (reading 'children['{key}']')"
    else:
        key = "".join(random.choices(string.ascii_lowercase, k=10))
        text = f"{prefix}TypeError: Cannot read properties of undefined (reading '{key}')"
    return base64.b64encode(text.encode()).decode()


@functools.lru_cache(maxsize=16)
def _browser(impersonate: str) -> tuple[tuple[str, str], ...]:
    """The browser's own headers for the ``grok.impersonate`` target (made once per target)."""
    match = _CHROME_TARGET.fullmatch(impersonate.strip().lower())
    major = int(match.group(1)) if match else DEFAULT_CHROME
    return (
        ("Accept-Language", "zh-CN,zh;q=0.9"),
        ("Cache-Control", "no-cache"),
        ("Pragma", "no-cache"),
        ("Sec-Ch-Ua", f'"Google Chrome";v="{major}", "Chromium";v="{major}", "Not(A:Brand";v="24"'),
        ("Sec-Ch-Ua-Arch", '"arm"'),
        ("Sec-Ch-Ua-Bitness", '"64"'),
        ("Sec-Ch-Ua-Mobile", "?0"),
        ("Sec-Ch-Ua-Model", '""'),
        ("Sec-Ch-Ua-Platform", '"macOS"'),
        ("User-Agent", ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
                        f"(KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36")),
    )


@functools.lru_cache(maxsize=64)
def _api_base(impersonate: str, base_url: str, referer: str) -> tuple[tuple[str, str], ...]:
    """The headers of an API call that depend on the settings and the page only."""
    return (("Accept", "*/*"), *_browser(impersonate), ("Origin", base_url), ("Referer", base_url + referer),
            ("Priority", "u=1, i"), ("Sec-Fetch-Dest", "empty"), ("Sec-Fetch-Mode", "cors"),
            ("Sec-Fetch-Site", "same-origin"))


def api_headers(grok: GrokSettings, token: str, *, referer: str, statsig: str,
                json_body: bool) -> dict[str, str]:
    """Headers of a REST call or WebSocket upgrade on the base origin; ``referer`` is a
    path there (``/``, ``/imagine``, ``/files``)."""
    headers = dict(_api_base(grok.impersonate, grok.base_url, referer))
    headers["x-statsig-id"] = statsig
    headers["x-xai-request-id"] = random_uuid()
    headers["Cookie"] = cookie_header(token, grok.cf_clearance)
    if json_body:
        headers["Content-Type"] = "application/json"
    return headers


def asset_headers(grok: GrokSettings, token: str | None) -> dict[str, str]:
    """Navigation-style headers of an asset download; no cookie for public hosts."""
    headers = {
        "Accept": _NAVIGATION_ACCEPT,
        **dict(_browser(grok.impersonate)),
        "Referer": grok.base_url + "/",
        "Sec-Fetch-Dest": "document",
        "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-Site": "same-site",
        "Sec-Fetch-User": "?1",
        "Upgrade-Insecure-Requests": "1",
        "x-xai-request-id": random_uuid(),
    }
    if token is not None:
        headers["Cookie"] = cookie_header(token, grok.cf_clearance)
    return headers
