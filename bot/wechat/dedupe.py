"""WeChat retries a message up to three times; every try must share the first one's work.

The first try starts a task; later tries with the same key await that same task (still running
or finished), so the answer is computed and logged once and every try gets the same reply.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any


def message_key(message: Any) -> str:
    """MsgId + sender for messages; sender + CreateTime + event for events (no MsgId)."""
    data = message._data
    if data.get("MsgId"):
        return f"msg:{message.source}:{data['MsgId']}"
    return f"evt:{message.source}:{data.get('CreateTime', '')}:{data.get('Event', '')}"


class Inflight:
    """Tasks by message key, kept ``ttl`` seconds after they start (WeChat retries within 15 s)."""

    def __init__(self, ttl: float = 60.0, max_entries: int = 10000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._tasks: OrderedDict[str, tuple[float, asyncio.Task]] = OrderedDict()
        self.deduplicated = 0

    def get_or_start(
        self, key: str, start: Callable[[], Awaitable[Any]]
    ) -> tuple[asyncio.Task, bool]:
        """(task, True) for a first try, (the first try's task, False) for a retry."""
        now = time.monotonic()
        while self._tasks and next(iter(self._tasks.values()))[0] < now:
            self._tasks.popitem(last=False)
        entry = self._tasks.get(key)
        if entry is not None:
            self.deduplicated += 1
            return entry[1], False
        task = asyncio.ensure_future(start())
        self._tasks[key] = (now + self.ttl, task)
        while len(self._tasks) > self.max_entries:
            self._tasks.popitem(last=False)
        return task, True
