"""Who is calling: the peer, or the client a trusted reverse proxy (nginx) names.

X-Forwarded-For is believed only from loopback and the networks in ``[server]
trusted_proxies`` (e.g. Docker's bridge, from which nginx reaches a container); from anyone
else it is ignored, or a caller could claim any address.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from aiohttp import web

from bot.keys import CONFIG


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def in_networks(address: str, cidrs: list[str] | tuple[str, ...]) -> bool:
    """True for loopback and for addresses inside any of ``cidrs``."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_loopback or any(ip in n for n in _networks(tuple(cidrs)))


def client_address(request: web.Request) -> str:
    """The caller's address; behind a trusted proxy, the address that proxy saw."""
    remote = request.remote or "?"
    if in_networks(remote, request.app[CONFIG].server.trusted_proxies):
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        return forwarded or request.headers.get("X-Real-IP", "").strip() or remote
    return remote
