"""Who is calling: the peer, or the client a trusted reverse proxy (nginx) names.

X-Forwarded-For and X-Forwarded-Proto are believed only from the networks in ``[server]
trusted_proxies`` (loopback too only when listed there); from anyone else they are ignored,
or a caller could claim any address or pretend to have come over HTTPS.
"""

from __future__ import annotations

import ipaddress
import logging
from functools import lru_cache

from aiohttp import web

from bot.keys import CONFIG

log = logging.getLogger(__name__)
FORWARDED = ("X-Forwarded-For", "X-Real-IP", "X-Forwarded-Proto")


@lru_cache(maxsize=8)
def _networks(cidrs: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def in_networks(address: str, cidrs: list[str] | tuple[str, ...], loopback: bool = True) -> bool:
    """True for addresses inside any of ``cidrs``, and for loopback when ``loopback``."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return (loopback and ip.is_loopback) or any(ip in n for n in _networks(tuple(cidrs)))


def from_trusted_proxy(request: web.Request) -> bool:
    """The peer is one of the configured proxies, whose forwarded headers are believed."""
    return in_networks(request.remote or "", request.app[CONFIG].server.trusted_proxies,
                       loopback=False)


def forwarded_untrusted(request: web.Request) -> bool:
    """Forwarded headers from a peer that is not a configured proxy (they are ignored)."""
    return any(h in request.headers for h in FORWARDED) and not from_trusted_proxy(request)


def client_address(request: web.Request) -> str:
    """The caller's address; behind a trusted proxy, the address that proxy saw."""
    remote = request.remote or "?"
    if from_trusted_proxy(request):
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        return forwarded or request.headers.get("X-Real-IP", "").strip() or remote
    return remote


def is_https(request: web.Request) -> bool:
    """HTTPS directly, or behind a trusted proxy that says so in X-Forwarded-Proto."""
    if request.secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return proto == "https" and from_trusted_proxy(request)


def local_caller(request: web.Request) -> bool:
    """A loopback caller that did not come through a proxy: a proxy on this host that is not
    in trusted_proxies would otherwise make every client on the internet look local."""
    return in_networks(client_address(request), ()) and not forwarded_untrusted(request)
