"""Bounded work under overload: a question the model cannot answer in time is shed, not queued.

At most ``slots`` questions are with the model at once; up to ``max_waiting`` more wait for a
slot, and a freed slot goes to the newest waiting question (LIFO): under overload a fresh
question can still make its reply in time, a stale one cannot. A question that waits longer
than ``max_wait`` (or so long that, at the model's recent pace, its answer would miss
``budget``), or the oldest one when the queue is full, is shed: it raises ``Shed``; the
webhook replies "success" and logs it as shed, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
QUEUE_FULL = "queue full"
WAITED_TOO_LONG = "waited too long"


class Shed(Exception):
    """A question dropped unanswered because the service is overloaded; the reason says how."""


class Admission:
    """The gate in front of the model; ``run`` either does the work or raises Shed."""

    def __init__(self, slots: int, max_waiting: int, max_wait: float,
                 budget: float | None = None, report_every: float = 10.0) -> None:
        self.slots = max(1, slots)
        self.max_waiting = max(0, max_waiting)
        self.max_wait = max_wait
        self.budget = budget
        self.pace = 0.0  # recent seconds from slot to answer (moving average)
        self.active = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self.shed: Counter[str] = Counter()  # by reason, since start
        self._report_every = report_every
        self._reported_at = -report_every  # the first shed is reported at once
        self._reported: Counter[str] = Counter()

    @property
    def waiting(self) -> int:
        return sum(1 for f in self._waiting if not f.done())

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        await self._acquire()
        started = time.monotonic()
        try:
            return await work()
        finally:
            self.pace += 0.2 * (time.monotonic() - started - self.pace)
            self._release()

    def _patience(self) -> float:
        """How long a question may wait now: max_wait, less when the answer would be late."""
        if self.budget is None:
            return self.max_wait
        return max(0.0, min(self.max_wait, self.budget - self.pace))

    async def _acquire(self) -> None:
        if self.active < self.slots and not self._waiting:
            self.active += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        if len(self._waiting) > self.max_waiting:
            oldest = self._waiting.popleft()  # may be ``future`` itself when max_waiting is 0
            oldest.set_exception(Shed(QUEUE_FULL))
            self._count(QUEUE_FULL)
        patience = self._patience()
        try:
            async with asyncio.timeout(patience):
                await future
        except TimeoutError:
            self._forget(future)
            self._count(WAITED_TOO_LONG)
            raise Shed(f"{WAITED_TOO_LONG} (over {patience:.1f} s)") from None
        except asyncio.CancelledError:
            self._forget(future)
            raise

    def _forget(self, future: asyncio.Future[None]) -> None:
        """A waiter gives up: leave the queue, or pass on a slot handed over just now."""
        if future.done() and not future.cancelled() and future.exception() is None:
            self._release()
        elif future in self._waiting:
            self._waiting.remove(future)

    def _release(self) -> None:
        while self._waiting:
            future = self._waiting.pop()  # newest first
            if not future.done():
                future.set_result(None)  # the slot passes on; ``active`` stays the same
                return
        self.active -= 1

    def _count(self, reason: str) -> None:
        self.shed[reason] += 1
        self._reported[reason] += 1
        now = time.monotonic()
        if now - self._reported_at >= self._report_every:  # one line per period, not per shed
            log.warning("overloaded: shed %s (logged with delivery 'shed')",
                        ", ".join(f"{n} ({r})" for r, n in self._reported.items()))
            self._reported.clear()
            self._reported_at = now
