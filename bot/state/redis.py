"""Shared state for several instances in Redis (redis-py's asyncio client).

While Redis is unreachable every operation falls back to this instance's memory, so answers
keep flowing; what degrades is the sharing itself (a retry reaching another instance may be
answered twice, a "1" on another instance finds no follow-up). Each outage is logged once
when it starts and once when it ends, and counted in ``degraded``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import LockError, RedisError

from bot.state.memory import MemoryState

log = logging.getLogger(__name__)
PREFIX = "union-bot:"
RETRY_AFTER = 1.0  # seconds an instance serves from memory before trying Redis again
ERRORS = (RedisError, OSError)


class RedisState:
    """SharedState on Redis with a per-instance memory fallback."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.fallback = MemoryState()
        self.degraded = 0
        self._down_until = 0.0
        self._down = False

    @classmethod
    async def open(cls, url: str) -> RedisState:
        client = aioredis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5,
                                         decode_responses=True)
        state = cls(client)
        try:
            await client.ping()
        except ERRORS as exc:  # start anyway: shared state is an optimisation of correctness
            state._failed(exc)
        return state

    def _usable(self) -> bool:
        if time.monotonic() < self._down_until:
            self.degraded += 1
            return False
        return True

    def _failed(self, exc: BaseException) -> None:
        self.degraded += 1
        self._down_until = time.monotonic() + RETRY_AFTER
        if not self._down:
            self._down = True
            log.error("state: Redis unreachable (%s); dedupe, follow-ups and sessions are "
                      "per instance until it returns", exc)

    def _ok(self) -> None:
        if self._down:
            self._down = False
            log.warning("state: Redis reachable again; shared state restored")

    async def _run(self, op: str, *args: Any, **kw: Any) -> tuple[bool, Any]:
        """(True, result) from Redis, or (False, None) when it is down."""
        if not self._usable():
            return False, None
        try:
            result = await getattr(self.client, op)(*args, **kw)
        except ERRORS as exc:
            self._failed(exc)
            return False, None
        self._ok()
        return True, result

    async def get(self, key: str) -> str | None:
        ok, value = await self._run("get", PREFIX + key)
        return value if ok else await self.fallback.get(key)

    async def set(self, key: str, value: str, ttl: float | None = None) -> None:
        ok, _ = await self._run("set", PREFIX + key, value,
                                px=int(ttl * 1000) if ttl else None)
        if not ok:
            await self.fallback.set(key, value, ttl)

    async def add(self, key: str, value: str, ttl: float | None = None) -> bool:
        ok, done = await self._run("set", PREFIX + key, value, nx=True,
                                   px=int(ttl * 1000) if ttl else None)
        return bool(done) if ok else await self.fallback.add(key, value, ttl)

    async def delete(self, key: str) -> None:
        ok, _ = await self._run("delete", PREFIX + key)
        if not ok:
            await self.fallback.delete(key)

    @asynccontextmanager
    async def lock(self, name: str, timeout: float) -> AsyncIterator[None]:
        """Held by one instance at a time (expires after ``timeout`` if its holder dies)."""
        lock = self.client.lock(PREFIX + "lock:" + name, timeout=timeout,
                                blocking_timeout=timeout)
        acquired = False
        if self._usable():
            try:
                acquired = bool(await lock.acquire())
                self._ok()
            except ERRORS as exc:
                self._failed(exc)
        if not acquired:
            async with self.fallback.lock(name, timeout):
                yield
            return
        try:
            yield
        finally:
            with suppress(*ERRORS, LockError):
                await lock.release()

    async def aclose(self) -> None:
        await self.client.aclose()
