"""Admin access: the token, signed session cookies, CSRF tokens and the wrong-token brake.

Sessions are stateless HMAC-signed cookies. The signing key mixes the admin token with a
random per-process secret, so changing the token or restarting the server ends every session;
a logout is remembered in memory until the session would have expired anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web

COOKIE = "admin_session"
BEARER = "bearer"  # the "session" of a script that sent Authorization: Bearer <token>


class LoginGuard:
    """Per-client wrong-token counter: after n failures the client must wait 2**(n-1) s (capped).

    Refusing early attempts outright (rather than sleeping) also brakes parallel guessing.
    """

    def __init__(self, base: float = 1.0, cap: float = 60.0, max_clients: int = 10000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base = base
        self.cap = cap
        self.max_clients = max_clients
        self.clock = clock
        self._clients: OrderedDict[str, tuple[int, float]] = OrderedDict()  # failures, until

    def wait(self, client: str) -> float:
        """Seconds ``client`` must still wait before its next try (0: may try now)."""
        entry = self._clients.get(client)
        return max(0.0, entry[1] - self.clock()) if entry else 0.0

    def failed(self, client: str) -> float:
        """Record a wrong token; returns the delay now imposed."""
        failures = self._clients.pop(client, (0, 0.0))[0] + 1
        delay = min(self.cap, self.base * 2 ** (failures - 1))
        self._clients[client] = (failures, self.clock() + delay)
        while len(self._clients) > self.max_clients:
            self._clients.popitem(last=False)
        return delay

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)


class AdminAuth:
    """Checks the admin token and issues and verifies sessions and CSRF tokens."""

    def __init__(self, token: str, session_seconds: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._token = token.encode()
        self._key = hmac.new(secrets.token_bytes(32), b"admin-session\0" + self._token,
                             hashlib.sha256).digest()
        self.session_seconds = session_seconds
        self.clock = clock
        self.guard = LoginGuard()
        self._revoked: dict[str, float] = {}

    def token_ok(self, candidate: str) -> bool:
        """Constant-time comparison, so timing reveals nothing about the token."""
        return hmac.compare_digest(candidate.encode(), self._token)

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def new_session(self) -> str:
        """A cookie value ``sid.expires.signature``."""
        payload = f"{secrets.token_urlsafe(16)}.{int(self.clock() + self.session_seconds)}"
        return f"{payload}.{self._sign(payload)}"

    def session(self, cookie: str | None) -> str | None:
        """The session id of a valid, unexpired, not logged-out cookie; else None."""
        sid, _, rest = (cookie or "").partition(".")
        expires, _, signature = rest.partition(".")
        if not (sid and expires.isascii() and expires.isdigit() and signature):
            return None
        if not hmac.compare_digest(signature.encode(), self._sign(f"{sid}.{expires}").encode()):
            return None
        if int(expires) < self.clock() or sid in self._revoked:
            return None
        return sid

    def revoke(self, cookie: str | None) -> None:
        """Log out: the cookie stops working even if a copy of it survives."""
        sid = self.session(cookie)
        if sid is None:
            return
        now = self.clock()
        self._revoked = {s: t for s, t in self._revoked.items() if t > now}
        self._revoked[sid] = now + self.session_seconds

    def csrf_token(self, sid: str) -> str:
        """Bound to the session: a form from another session (or site) is refused."""
        return self._sign(f"csrf\0{sid}")

    def csrf_ok(self, sid: str, candidate: str) -> bool:
        return sid == BEARER or hmac.compare_digest(candidate.encode(),
                                                    self.csrf_token(sid).encode())


def is_https(request: web.Request) -> bool:
    from bot.proxy import is_https as https  # bot.proxy imports bot.keys, which imports us

    return https(request)


def set_session_cookie(response: web.StreamResponse, request: web.Request, value: str,
                       max_age: float) -> None:
    response.set_cookie(COOKIE, value, max_age=int(max_age), path="/admin", httponly=True,
                        samesite="Strict", secure=is_https(request))


def clear_session_cookie(response: web.StreamResponse, request: web.Request) -> None:
    response.del_cookie(COOKIE, path="/admin", httponly=True, samesite="Strict",
                        secure=is_https(request))
