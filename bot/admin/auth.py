"""Admin access: the token, signed session cookies, CSRF tokens and the wrong-token brake.

Sessions are HMAC-signed cookies. The signing key mixes the admin token with a random secret
kept in the shared state, so a session works on every instance, and changing the token (or a
fresh in-memory state: a restart of a single instance) ends every session. A logout and the
wrong-token brake live in the shared state too, until they would have expired anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from aiohttp import web

from bot.state import BoundedKeys, MemoryState, SharedState

COOKIE = "admin_session"
BEARER = "bearer"  # the "session" of a script that sent Authorization: Bearer <token>
SECRET_KEY = "admin:session-secret"
BRAKE_MEMORY = 3600.0  # seconds a client's wrong tries are remembered


class LoginGuard:
    """Per-client wrong-token counter: after n failures the client must wait 2**(n-1) s (capped).

    Refusing early attempts outright (rather than sleeping) also brakes parallel guessing.
    Shared across instances through the state; ``max_clients`` bounds what one instance writes.
    """

    def __init__(self, state: SharedState | None = None, base: float = 1.0, cap: float = 60.0,
                 max_clients: int = 10000, clock: Callable[[], float] = time.time) -> None:
        self.state = state or MemoryState()
        self.base = base
        self.cap = cap
        self.clock = clock
        self._clients = BoundedKeys(self.state, max_clients)

    async def _entry(self, client: str) -> tuple[int, float]:
        raw = await self.state.get("admin:brake:" + client)
        failures, _, until = (raw or "0:0").partition(":")
        return int(failures), float(until)

    async def wait(self, client: str) -> float:
        """Seconds ``client`` must still wait before its next try (0: may try now)."""
        return max(0.0, (await self._entry(client))[1] - self.clock())

    async def failed(self, client: str) -> float:
        """Record a wrong token; returns the delay now imposed."""
        failures = (await self._entry(client))[0] + 1
        delay = min(self.cap, self.base * 2 ** (failures - 1))
        key = "admin:brake:" + client
        await self.state.set(key, f"{failures}:{self.clock() + delay}", BRAKE_MEMORY)
        await self._clients.touch(key)
        return delay

    async def succeeded(self, client: str) -> None:
        await self.state.delete("admin:brake:" + client)


class AdminAuth:
    """Checks the admin token and issues and verifies sessions and CSRF tokens."""

    def __init__(self, token: str, session_seconds: float, state: SharedState | None = None,
                 secret: bytes | None = None, clock: Callable[[], float] = time.time) -> None:
        self._token = token.encode()
        self._key = hmac.new(secret or secrets.token_bytes(32), b"admin-session\0" + self._token,
                             hashlib.sha256).digest()
        self.session_seconds = session_seconds
        self.clock = clock
        self.state = state or MemoryState()
        self.guard = LoginGuard(self.state)

    @classmethod
    async def shared(cls, token: str, session_seconds: float, state: SharedState) -> AdminAuth:
        """With the secret every instance shares: the first one to start creates it."""
        await state.add(SECRET_KEY, secrets.token_hex(32))
        secret = await state.get(SECRET_KEY)
        return cls(token, session_seconds, state, bytes.fromhex(secret) if secret else None)

    def token_ok(self, candidate: str) -> bool:
        """Constant-time comparison, so timing reveals nothing about the token."""
        return hmac.compare_digest(candidate.encode(), self._token)

    def _sign(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()

    def new_session(self) -> str:
        """A cookie value ``sid.expires.signature``."""
        payload = f"{secrets.token_urlsafe(16)}.{int(self.clock() + self.session_seconds)}"
        return f"{payload}.{self._sign(payload)}"

    def _valid(self, cookie: str | None) -> tuple[str, float] | None:
        sid, _, rest = (cookie or "").partition(".")
        expires, _, signature = rest.partition(".")
        if not (sid and expires.isascii() and expires.isdigit() and signature):
            return None
        if not hmac.compare_digest(signature.encode(), self._sign(f"{sid}.{expires}").encode()):
            return None
        if int(expires) < self.clock():
            return None
        return sid, float(expires)

    async def session(self, cookie: str | None) -> str | None:
        """The session id of a valid, unexpired, not logged-out cookie; else None."""
        valid = self._valid(cookie)
        if valid is None or await self.state.get("admin:logout:" + valid[0]) is not None:
            return None
        return valid[0]

    async def revoke(self, cookie: str | None) -> None:
        """Log out: the cookie stops working, on every instance, even if a copy survives."""
        valid = self._valid(cookie)
        if valid is not None:
            await self.state.set("admin:logout:" + valid[0], "1",
                                 max(valid[1] - self.clock(), 1.0))

    def csrf_token(self, sid: str) -> str:
        """Bound to the session: a form from another session (or site) is refused."""
        return self._sign(f"csrf\0{sid}")

    def csrf_ok(self, sid: str, candidate: str) -> bool:
        return sid == BEARER or hmac.compare_digest(candidate.encode(),
                                                    self.csrf_token(sid).encode())


def is_https(request: web.Request) -> bool:
    from bot.ops.proxy import is_https as https  # bot.ops.proxy imports bot.keys, which imports us

    return https(request)


def set_session_cookie(response: web.StreamResponse, request: web.Request, value: str,
                       max_age: float) -> None:
    response.set_cookie(COOKIE, value, max_age=int(max_age), path="/admin", httponly=True,
                        samesite="Strict", secure=is_https(request))


def clear_session_cookie(response: web.StreamResponse, request: web.Request) -> None:
    response.del_cookie(COOKIE, path="/admin", httponly=True, samesite="Strict",
                        secure=is_https(request))
