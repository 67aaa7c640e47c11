"""Who the client is, behind reverse proxies or not.

A request that carries ``Forwarded``, ``X-Forwarded-For`` or ``X-Real-IP`` came through a
proxy (or claims to). Those headers are believed only when the peer is in
``app.trusted_proxies``; then the client is the nearest address in the chain that is
not a trusted proxy. A request that carries them from any other peer is never taken
for a loopback client, so nginx or Caddy on the same host does not open the
loopback-only defaults to the world.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Sequence

from aiohttp import web

from grok2api.web.appkeys import SETTINGS

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
_FOR = re.compile(r'(?i)\bfor="?\[?([0-9a-fA-F.:]+)')


@functools.lru_cache(maxsize=8)
def networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def parse_address(text: str | None) -> Address | None:
    try:
        return ipaddress.ip_address((text or "").strip().strip("[]"))
    except ValueError:
        return None


def _trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)


def _chain(request: web.Request) -> list[Address | None]:
    """The forwarded-for chain, client first, as the headers give it (``Forwarded`` first)."""
    if "Forwarded" in request.headers:
        hops: Iterable[str] = _FOR.findall(",".join(request.headers.getall("Forwarded")))
    elif "X-Forwarded-For" in request.headers:
        hops = ",".join(request.headers.getall("X-Forwarded-For")).split(",")
    else:
        hops = [request.headers.get("X-Real-IP", "")]
    return [parse_address(hop) for hop in hops]


def _resolve(request: web.Request) -> tuple[Address | None, bool]:
    """The client's address, and whether forwarding headers came from an untrusted peer."""
    peer = parse_address(request.remote)
    if not any(h in request.headers for h in FORWARDING_HEADERS):
        return peer, False
    trusted = networks(tuple(request.app[SETTINGS].app.trusted_proxies))
    if peer is None or not _trusted(peer, trusted):
        return peer, True
    for hop in reversed(_chain(request)):
        if hop is None:
            return None, False  # a hop we cannot read: the client is unknown
        if not _trusted(hop, trusted):
            return hop, False
    return peer, False  # every hop a trusted proxy: the nearest one made the request


def client_address(request: web.Request) -> Address | None:
    """The address to log and throttle by: the peer's, or the client's a trusted proxy names."""
    return _resolve(request)[0]


def is_loopback(request: web.Request) -> bool:
    """A client on this machine, and not one a proxy on this machine forwarded."""
    address, forged = _resolve(request)
    return not forged and address is not None and address.is_loopback
