"""Replay refusal: a signed (timestamp, nonce) is good for one request body only.

WeChat's ``signature`` covers the token, timestamp and nonce but not a plaintext body, so a
captured query could otherwise carry any body for as long as its timestamp is inside the
window. The very same request again (same body) is let through for ``retry_seconds``: WeChat
retries a message it got no reply to, and the retry gets the first try's reply (bot.wechat.dedupe).
The nonces live in the shared state, so a replay sent to another instance is refused too.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from bot.state import BoundedKeys, MemoryState, SharedState


class NonceCache:
    """Remembers each (timestamp, nonce) and its body digest until the timestamp has left the
    window, so no signed query can be used twice with different bodies. One instance writes
    at most ``max_entries`` of them (the oldest are forgotten early beyond that)."""

    def __init__(self, window: float, retry_seconds: float = 30.0, max_entries: int = 200_000,
                 clock: Callable[[], float] = time.time, state: SharedState | None = None) -> None:
        self.window = window
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.state: SharedState = state or MemoryState(max_entries)
        self._keys = BoundedKeys(self.state, max_entries)
        self.refused = 0

    @property
    def evicted(self) -> int:
        """Forgotten early because this instance's bound was reached."""
        return self._keys.dropped

    async def check(self, timestamp: str, nonce: str, body: bytes) -> bool:
        """True for a first use (now remembered) or an identical retry; False for a replay.

        ``timestamp`` must already be verified as a number inside the window.
        """
        now = self.clock()
        key = f"nonce:{timestamp}:{nonce}"
        digest = hashlib.sha256(body).hexdigest()
        until = float(timestamp) + self.window + 1
        value = f"{digest} {now} {until}"
        ttl = max(until - now, 1.0)
        if not await self.state.add(key, value, ttl):
            seen = (await self.state.get(key) or "").split()
            if len(seen) == 3 and float(seen[2]) >= now:  # still inside the window
                if seen[0] == digest and now - float(seen[1]) <= self.retry_seconds:
                    return True
                self.refused += 1
                return False
            await self.state.set(key, value, ttl)
        await self._keys.touch(key, until, now)
        return True

    def __len__(self) -> int:
        return len(self._keys)
