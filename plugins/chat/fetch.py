"""Attachment bytes from what a client sent: data URIs, bare base64, or a URL fetched safely.

A URL is fetched only when every address its host resolves to is public (the kernel's
outbound guard: ``GuardedResolver`` in the connector, ``check_fetch_url`` before each
hop), and redirects are followed by hand so each hop is checked again. Bodies are capped
in size and the whole fetch in time. Operators may exempt networks with
``chat.fetch_allow_networks``. Every refusal is a 400 naming the field.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import mimetypes
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

import aiohttp
from yarl import URL

from grok2api.api import ApiError, FetchRefused, GuardedResolver, check_fetch_url, invalid
from grok2api_plugins.chat.request import Attachment
from grok2api_plugins.chat.settings import ChatSettings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_MIME = {"image": "image/jpeg", "audio": "audio/wav", "file": "application/octet-stream"}
_MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Blob:
    data: bytes
    mime: str
    filename: str


class AttachmentLoader:
    """Turns an :class:`Attachment` into bytes; one per app, owning its HTTP session."""

    def __init__(self, settings: Callable[[], ChatSettings],
                 own: Callable[[Attachment], Awaitable[Blob | None]] | None = None) -> None:
        self._settings = settings
        self._own = own  # the gateway's own media links, read from its cache (own_media.py)
        self._session: aiohttp.ClientSession | None = None

    def _allowed(self) -> list[Network]:
        return [ipaddress.ip_network(n, strict=False) for n in self._settings().fetch_allow_networks]

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._allowed), limit=32)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=True)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def load(self, attachment: Attachment) -> Blob:
        source = attachment.source
        if source.lower().startswith(("http://", "https://")):
            own = await self._own(attachment) if self._own is not None else None
            return own or await self._fetch(attachment)
        limit = int(self._settings().inline_max_mb * _MB)
        if source[:5].lower() == "data:":
            mime, data = decode_data_uri(source, limit, attachment.param)
        else:
            mime, data = attachment.mime, decode_base64(source, limit, attachment.param)
        mime = mime or attachment.mime or _guess(attachment.filename) or _DEFAULT_MIME[attachment.kind]
        return Blob(data, mime, attachment.filename or _filename(attachment.kind, mime))

    async def _fetch(self, attachment: Attachment) -> Blob:
        settings = self._settings()
        try:
            async with asyncio.timeout(settings.fetch_timeout):
                return await self._follow(attachment, settings)
        except FetchRefused as exc:
            raise invalid(f"Refusing to fetch {attachment.param}: {exc}", attachment.param,
                          "attachment_url_refused") from None
        except TimeoutError:
            raise invalid(f"Fetching {attachment.param} took longer than {settings.fetch_timeout:g} s",
                          attachment.param, "attachment_fetch_failed") from None
        except aiohttp.ClientError as exc:
            raise invalid(f"Could not fetch {attachment.param}: {type(exc).__name__}", attachment.param,
                          "attachment_fetch_failed") from None

    async def _follow(self, attachment: Attachment, settings: ChatSettings) -> Blob:
        url = URL(attachment.source)
        limit = int(settings.fetch_max_mb * _MB)
        for _ in range(settings.fetch_max_redirects + 1):
            check_fetch_url(url, self._allowed())
            async with self._http().get(url, allow_redirects=False, headers={"Accept": "*/*"}) as resp:
                if resp.status in _REDIRECTS and "Location" in resp.headers:
                    url = url.join(URL(resp.headers["Location"]))
                    continue
                if resp.status != 200:
                    raise invalid(f"Could not fetch {attachment.param}: the server answered HTTP {resp.status}",
                                  attachment.param, "attachment_fetch_failed")
                data = await _read_capped(resp, limit, attachment.param)
                mime = resp.content_type if resp.content_type != "application/octet-stream" else ""
                name = url.name or ""
                mime = mime or _guess(name) or _DEFAULT_MIME[attachment.kind]
                return Blob(data, mime, attachment.filename or name or _filename(attachment.kind, mime))
        raise invalid(f"Could not fetch {attachment.param}: more than {settings.fetch_max_redirects} redirects",
                      attachment.param, "attachment_fetch_failed")


async def _read_capped(resp: aiohttp.ClientResponse, limit: int, param: str) -> bytes:
    if resp.content_length is not None and resp.content_length > limit:
        raise _too_large(param, limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise _too_large(param, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(param: str, limit: int) -> ApiError:
    return invalid(f"{param} is larger than {limit / _MB:g} MB", param, "attachment_too_large")


def decode_data_uri(uri: str, limit: int, param: str) -> tuple[str, bytes]:
    header, comma, payload = uri[5:].partition(",")
    if not comma:
        raise invalid(f"{param} is not a valid data: URI (no comma)", param, "invalid_data_uri")
    fields = header.split(";")
    mime = fields[0].strip().lower()
    if "base64" in (f.strip().lower() for f in fields[1:]):
        return mime, decode_base64(payload, limit, param)
    data = unquote_to_bytes(payload)
    if len(data) > limit:
        raise _too_large(param, limit)
    return mime, data


def decode_base64(text: str, limit: int, param: str) -> bytes:
    compact = "".join(text.split())
    if len(compact) // 4 * 3 > limit + 2:
        raise _too_large(param, limit)
    try:
        data = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"{param} is not valid base64", param, "invalid_base64") from None
    if not data:
        raise invalid(f"{param} is empty", param, "invalid_base64")
    if len(data) > limit:
        raise _too_large(param, limit)
    return data


def _guess(filename: str) -> str:
    return (mimetypes.guess_type(filename)[0] or "") if filename else ""


def _filename(kind: str, mime: str) -> str:
    return f"{kind}{mimetypes.guess_extension(mime) or '.bin'}"
