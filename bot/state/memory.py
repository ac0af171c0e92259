"""Shared state for one instance: a bounded dict with lifetimes, and asyncio locks."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class MemoryState:
    """The default (one instance), and Redis's fallback while Redis is unreachable.

    Expired keys are dropped as time passes; beyond ``max_entries`` live keys, the least
    recently written go first.
    """

    def __init__(self, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self.degraded = 0
        self._values: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._expiry: list[tuple[float, str]] = []  # heap of (expires, key)
        self._locks: dict[str, asyncio.Lock] = {}

    def _live(self, key: str) -> str | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        if entry[0] < time.monotonic():
            del self._values[key]
            return None
        return entry[1]

    async def get(self, key: str) -> str | None:
        return self._live(key)

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        now = time.monotonic()
        until = now + ttl if ttl else float("inf")
        self._values.pop(key, None)
        self._values[key] = (until, value)
        if ttl:
            heapq.heappush(self._expiry, (until, key))
        while self._expiry and self._expiry[0][0] < now:
            _, old = heapq.heappop(self._expiry)
            entry = self._values.get(old)
            if entry is not None and entry[0] < now:
                del self._values[old]
        while len(self._values) > self.max_entries:
            self._values.popitem(last=False)

    async def add(self, key: str, value: str, ttl: float | None = None) -> bool:
        if self._live(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)

    @asynccontextmanager
    async def lock(self, name: str, timeout: float) -> AsyncIterator[None]:
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            yield

    async def aclose(self) -> None:
        self._values.clear()
