"""State several instances must share, behind one small interface: in memory or in Redis.

Built on it: retry dedupe across instances (single flight), follow-ups, the nonce replay
cache, admin sessions, logouts and the login brake, and the customer-service access token.
The webhook and admin code never see Redis; they use these primitives.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from bot.config import StateConfig
from bot.state.memory import MemoryState

__all__ = ["BoundedKeys", "MemoryState", "SharedState", "open_state", "wait_for_value"]


class SharedState(Protocol):
    """Strings under keys with an optional lifetime, plus named locks. Never raises on a
    backend outage: a degraded backend falls back to this instance's memory and says so."""

    degraded: int  # operations served from memory because the shared backend was unreachable

    async def get(self, key: str) -> str | None: ...
    async def set(self, key: str, value: str, ttl: float | None = None) -> None: ...
    async def add(self, key: str, value: str, ttl: float | None = None) -> bool: ...
    async def delete(self, key: str) -> None: ...
    def lock(self, name: str, timeout: float) -> AbstractAsyncContextManager[None]: ...
    async def aclose(self) -> None: ...


async def wait_for_value(state: SharedState, key: str, timeout: float,
                         interval: float = 0.02) -> str | None:
    """Poll ``key`` until it has a value or ``timeout`` passes (then None)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await state.get(key)
        if value is not None or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(interval)


class BoundedKeys:
    """The keys one instance wrote for a feature, least recent dropped (and deleted from the
    state) beyond ``limit``: a per-instance bound on what strangers can make it store."""

    def __init__(self, state: SharedState, limit: int) -> None:
        self.state = state
        self.limit = limit
        self.dropped = 0  # keys deleted before ``until``: the bound, not their lifetime, ended them
        self._keys: OrderedDict[str, float] = OrderedDict()

    async def touch(self, key: str, until: float = float("inf"), now: float = 0.0) -> None:
        """Record ``key`` (meant to live until ``until`` on the caller's clock, ``now``)."""
        self._keys.pop(key, None)
        self._keys[key] = until
        while len(self._keys) > self.limit:
            oldest, oldest_until = self._keys.popitem(last=False)
            if oldest_until > now:
                self.dropped += 1
                await self.state.delete(oldest)

    def __len__(self) -> int:
        return len(self._keys)


async def open_state(cfg: StateConfig) -> SharedState:
    """Redis when ``[state] redis_url`` is set, else this process's memory."""
    if cfg.redis_url:
        from bot.state.redis import RedisState

        return await RedisState.open(cfg.redis_url)
    return MemoryState()
