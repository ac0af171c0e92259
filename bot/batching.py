"""Dynamic micro-batching: questions that arrive together share one model call.

Encoding a batch of 16 questions costs far less than 16 single calls, so concurrent questions
queue while the model is busy and the next call takes all of them at once. With nobody else
waiting a question is encoded at once (``max_wait`` 0): batching adds no latency at low load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """Runs ``work(items) -> results`` on batches of queued items in one worker thread."""

    def __init__(self, work: Callable[[list[T]], list[R]], max_batch: int = 32,
                 max_wait: float = 0.0) -> None:
        self.work = work
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch")
        self._queue: asyncio.Queue[tuple[T, asyncio.Future[R]]] | None = None
        self._worker: asyncio.Task | None = None
        self.batches = 0
        self.items = 0

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait for its result."""
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._run(self._queue))
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def _run(self, queue: asyncio.Queue[tuple[T, asyncio.Future[R]]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            if self.max_wait > 0 and queue.empty():
                await asyncio.sleep(self.max_wait)
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            live = [(item, fut) for item, fut in batch if not fut.done()]
            if not live:
                continue
            self.batches += 1
            self.items += len(live)
            try:
                results = await loop.run_in_executor(
                    self.executor, self.work, [item for item, _ in live]
                )
            except Exception as exc:  # noqa: BLE001 - every waiter gets the error
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), result in zip(live, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self.executor.shutdown(wait=True)
