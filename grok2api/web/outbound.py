"""Requests the gateway itself makes to addresses someone else named (a client's attachment
URL, an operator's webhook): never to loopback, private, link-local, multicast, reserved
or unspecified addresses (IPv4 inside IPv6 included) unless a network is exempted.

The check sits in the connector's resolver (:class:`GuardedResolver`), so the address
that was checked is the one connected to; :func:`check_fetch_url` refuses other schemes
and literal addresses before a request starts. A caller that follows redirects checks
each hop's URL again.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class FetchRefused(Exception):
    """The host is not allowed; the message says which address and why."""


def address_refusal(ip: IPAddress, allowed: Sequence[Network] = ()) -> str | None:
    """Why ``ip`` may not be fetched from (``"loopback"``, ``"private"``…), or None when it may."""
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        candidates.insert(0, ip.ipv4_mapped)
    if any(c in net for c in candidates for net in allowed if c.version == net.version):
        return None
    for c in candidates:
        for attr, label in (("is_loopback", "loopback"), ("is_link_local", "link-local"),
                            ("is_multicast", "multicast"), ("is_unspecified", "unspecified"),
                            ("is_reserved", "reserved"), ("is_private", "private")):
            if getattr(c, attr):
                return label
    return None if ip.is_global else "non-public"


class GuardedResolver(AbstractResolver):
    """Resolves names and refuses the whole answer when any address is not allowed.

    ``allowed`` is called on every lookup, so a change of the exempt networks in
    configuration applies to the next connection.
    """

    def __init__(self, allowed: Callable[[], Sequence[Network]] = tuple) -> None:
        self._inner = ThreadedResolver()
        self._allowed = allowed

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = self._allowed()
        for result in results:
            why = address_refusal(ipaddress.ip_address(result["host"]), allowed)
            if why is not None:
                raise FetchRefused(f"{host} resolves to {result['host']}, a {why} address")
        return results

    async def close(self) -> None:
        await self._inner.close()


def check_fetch_url(url: URL, allowed: Sequence[Network] = ()) -> None:
    """Scheme and literal addresses; host names are checked by the resolver when connecting."""
    if url.scheme not in ("http", "https") or not url.host:
        raise FetchRefused(f"{url.scheme or 'a relative'} URL is not http(s)")
    try:
        ip = ipaddress.ip_address(url.host)
    except ValueError:
        return
    why = address_refusal(ip, allowed)
    if why is not None:
        raise FetchRefused(f"{url.host} is a {why} address")
