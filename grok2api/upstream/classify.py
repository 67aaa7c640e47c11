"""Turn what went wrong upstream (a status and body, an in-stream error, a curl error) into
one :class:`UpstreamError`, so the pool and the plugins never read raw upstream failures.

The markers are the ones the protocol notes list (§8.1); anything unrecognised falls
into the class that penalises the account least.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import orjson
from curl_cffi import CurlECode, CurlError

from grok2api.logs.logger import mask_text
from grok2api.upstream.errors import Failure, UpstreamError

EXCERPT_CHARS = 500

_BLOCKED = ("blocked-user", "user is blocked", "account suspended", "email-domain-rejected")
_CREDENTIALS = ("invalid-credentials", "bad-credentials", "failed to look up session id",
                "session not found", "token expired", "token revoked", "unauthenticated")
_CHALLENGE = ("challenge-platform", "__cf_chl", "cf-chl-", "just a moment")
_ANTI_BOT = ("anti-bot",)
_MODERATED = ("content-moderated", "moderated", "content policy")
_RATE_LIMITED = ("usage limit", "usage quota", "too many requests", "rate limit", "rate_limit",
                 "used up your media generation credits")

#: curl failures that happen before any byte of the request reached the upstream
_NOT_SENT = frozenset({
    CurlECode.UNSUPPORTED_PROTOCOL, CurlECode.URL_MALFORMAT, CurlECode.COULDNT_RESOLVE_PROXY,
    CurlECode.COULDNT_RESOLVE_HOST, CurlECode.COULDNT_CONNECT, CurlECode.SSL_CONNECT_ERROR,
    CurlECode.PEER_FAILED_VERIFICATION, CurlECode.SSL_CERTPROBLEM, CurlECode.SSL_CIPHER,
    CurlECode.SSL_CACERT_BADFILE, CurlECode.INTERFACE_FAILED, CurlECode.PROXY,
})


def excerpt(body: bytes | str) -> str:
    """A log-safe prefix of an upstream body: truncated, secrets masked."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if len(text) > EXCERPT_CHARS:
        text = text[:EXCERPT_CHARS] + "…"
    return mask_text(text)


def _has(text: str, markers: tuple[str, ...]) -> bool:
    return any(marker in text for marker in markers)


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _wait_time(data: Any) -> float | None:
    """``waitTimeSeconds`` at the top level or inside an ``error`` envelope."""
    for scope in (data, data.get("error") if isinstance(data, dict) else None):
        if isinstance(scope, dict):
            value = scope.get("waitTimeSeconds")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                return float(value)
    return None


def retry_after(headers: Mapping[str, str | None], body: bytes = b"") -> float | None:
    """The upstream's reset hint in seconds: ``Retry-After`` (seconds or a date), else
    ``waitTimeSeconds`` in the JSON body."""
    value = (headers.get("retry-after") or "").strip()
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                pass
    return _wait_time(_json(body)) if body else None


def _looks_html(text: str) -> bool:
    head = text.lstrip()[:200]
    return head.startswith("<") or "<html" in head


def from_status(status: int, headers: Mapping[str, str | None], body: bytes | None, what: str) -> UpstreamError:
    """Classify a non-2xx answer. ``body`` is ``None`` when it could not be read
    (WebSocket handshakes): then only the status and headers decide."""
    text = (body or b"").decode("utf-8", "replace").lower()
    content_type = (headers.get("content-type") or "").lower()

    def error(failure: Failure, reason: str, wait: float | None = None) -> UpstreamError:
        return UpstreamError(failure, f"{what}: {reason} (HTTP {status})", status=status,
                             retry_after=wait, body_excerpt=excerpt(body or b""))

    if status in (400, 401, 403):
        if _has(text, _BLOCKED):
            return error(Failure.BLOCKED, "account blocked")
        if _has(text, _CREDENTIALS):
            return error(Failure.INVALID_CREDENTIALS, "SSO token rejected")
    if status == 401:
        return error(Failure.INVALID_CREDENTIALS, "SSO token rejected")
    if status == 429:
        return error(Failure.RATE_LIMITED, "rate limited", retry_after(headers, body or b""))
    if status == 403:
        challenge = (headers.get("cf-mitigated") or "").lower() == "challenge"
        empty = not text.strip() if body is not None else headers.get("content-length") == "0"
        if challenge or empty or "text/html" in content_type or _looks_html(text) or _has(text, _CHALLENGE):
            return error(Failure.CLOUDFLARE, "Cloudflare challenge")
        if _has(text, _ANTI_BOT):
            return error(Failure.ANTI_BOT, "rejected by anti-bot rules")
        if _has(text, _MODERATED):
            return error(Failure.MODERATED, "content moderated")
        if _has(text, _RATE_LIMITED):
            return error(Failure.RATE_LIMITED, "rate limited", retry_after(headers, body or b""))
        return error(Failure.ANTI_BOT, "request forbidden")
    if status >= 500:
        return error(Failure.UPSTREAM_5XX, "upstream failure")
    return error(Failure.BAD_REQUEST, "request refused")


def from_stream_error(code: int | str | None, message: str, what: str,
                      wait: float | None = None) -> UpstreamError:
    """Classify an error that arrived inside a 200 stream (gRPC-style codes: 7, 8, 16)."""
    text = f"{code} {message}".lower()
    if code == 8 or _has(text, _RATE_LIMITED):
        failure = Failure.RATE_LIMITED
    elif _has(text, _BLOCKED):
        failure = Failure.BLOCKED
    elif code == 16 or _has(text, _CREDENTIALS):
        failure = Failure.INVALID_CREDENTIALS
    elif code == 7 or _has(text, _ANTI_BOT):
        failure = Failure.ANTI_BOT
    elif _has(text, _MODERATED):
        failure = Failure.MODERATED
    else:
        failure = Failure.UPSTREAM_5XX
    return UpstreamError(failure, f"{what}: upstream error in stream: {excerpt(message)}",
                         retry_after=wait, body_excerpt=excerpt(message))


def _proxy_refused(code: int, message: str) -> bool:
    """An HTTP proxy that refused to open the tunnel (curl reports it as a receive error)."""
    return code == CurlECode.RECV_ERROR and "CONNECT" in message


def from_curl(exc: CurlError, what: str, *, responded: bool) -> UpstreamError:
    """Classify a transport failure; ``responded`` says whether headers had arrived.
    Code 0 is curl_cffi or the transport refusing before curl ran (closed session, no free
    handle, an unknown impersonation target)."""
    code = exc.code
    message = excerpt(str(exc).split(". See https://curl.se")[0])
    if code == CurlECode.OPERATION_TIMEDOUT:
        if responded:
            failure = Failure.TIMEOUT_IDLE
        elif "connect" in message.lower() or "resolv" in message.lower():
            failure = Failure.TIMEOUT_CONNECT
        else:
            failure = Failure.TIMEOUT_FIRST_BYTE
    elif not responded and (code in _NOT_SENT or code == 0 or _proxy_refused(code, message)):
        failure = Failure.NETWORK_BEFORE_SEND
    else:
        failure = Failure.NETWORK_AFTER_SEND
    return UpstreamError(failure, f"{what}: {message}")
