"""Replay refusal: a signed (timestamp, nonce) is good for one request body only.

WeChat's ``signature`` covers the token, timestamp and nonce but not a plaintext body, so a
captured query could otherwise carry any body for as long as its timestamp is inside the
window. The very same request again (same body) is let through for ``retry_seconds``: WeChat
retries a message it got no reply to, and the retry gets the first try's reply (bot.dedupe).
"""

from __future__ import annotations

import hashlib
import heapq
import time
from collections.abc import Callable


class NonceCache:
    """Remembers each (timestamp, nonce) and its body digest until the timestamp has left the
    window, so no signed query can be used twice with different bodies.

    In-memory and bounded; ``check`` is the whole interface, so a shared store (e.g. Redis
    SET NX with an expiry) can stand in for it when several processes serve one account.
    """

    def __init__(self, window: float, retry_seconds: float = 30.0, max_entries: int = 200_000,
                 clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self.retry_seconds = retry_seconds
        self.max_entries = max_entries
        self.clock = clock
        self._seen: dict[tuple[str, str], tuple[bytes, float]] = {}  # -> digest, first seen
        self._expiry: list[tuple[float, tuple[str, str]]] = []  # heap: (forget at, key)
        self.refused = 0
        self.evicted = 0  # forgotten early because the cache was full

    def check(self, timestamp: str, nonce: str, body: bytes) -> bool:
        """True for a first use (now remembered) or an identical retry; False for a replay.

        ``timestamp`` must already be verified as a number inside the window.
        """
        now = self.clock()
        self._forget(now)
        key = (timestamp, nonce)
        digest = hashlib.sha256(body).digest()
        seen = self._seen.get(key)
        if seen is not None:
            if seen[0] == digest and now - seen[1] <= self.retry_seconds:
                return True
            self.refused += 1
            return False
        self._seen[key] = (digest, now)
        heapq.heappush(self._expiry, (float(timestamp) + self.window + 1, key))
        return True

    def _forget(self, now: float) -> None:
        heap = self._expiry
        while heap and (heap[0][0] < now or len(self._seen) >= self.max_entries):
            expires, key = heapq.heappop(heap)
            self._seen.pop(key, None)
            if expires >= now:
                self.evicted += 1

    def __len__(self) -> int:
        return len(self._seen)
