"""Dynamic micro-batching: questions that arrive together share one model call.

Encoding a batch of 16 questions costs far less than 16 single calls, so concurrent questions
queue while the model is busy and the next call takes all of them at once. With nobody else
waiting a question is encoded at once (``max_wait`` 0): batching adds no latency at low load.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class MicroBatcher(Generic[T, R]):
    """Runs ``work(items) -> results`` on batches of queued items in ``workers`` threads.

    No queue task in between: a question arriving while a worker is free starts a model call
    at once, and a finished call hands its results over and starts the next batch from its own
    done callback (fewer event-loop hops per question). With several workers the batches run
    side by side (the ONNX model's calls share the cores, see OnnxEmbedder).
    """

    def __init__(self, work: Callable[[list[T]], list[R]], max_batch: int = 32,
                 max_wait: float = 0.0, workers: int = 1) -> None:
        self.work = work
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.workers = max(1, workers)
        # One thread per worker, and the lowest free one takes the next batch: a lone question
        # always runs on the same thread (alternating threads cost ~1 ms a question).
        self.executors = [ThreadPoolExecutor(1, thread_name_prefix=f"batch{n}")
                          for n in range(self.workers)]
        self._pending: deque[tuple[T, asyncio.Future[R]]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._free = set(range(self.workers))  # workers with no batch running or about to start
        self.batches = 0
        self.items = 0

    async def submit(self, item: T) -> R:
        """Queue ``item`` and wait for its result."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (tests): nothing of the old one is live
            self._loop, self._free = loop, set(range(self.workers))
            self._pending.clear()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._free:
            worker = min(self._free)
            self._free.discard(worker)
            if self.max_wait > 0:
                loop.call_later(self.max_wait, self._start, loop, worker)
            else:
                self._start(loop, worker)
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop, worker: int) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        while self._pending and len(batch) < self.max_batch:
            item, future = self._pending.popleft()
            if not future.done():  # its waiter gave up
                batch.append((item, future))
        if not batch or loop.is_closed():
            self._free.add(worker)
            return
        self.batches += 1
        self.items += len(batch)
        job = loop.run_in_executor(self.executors[worker], self.work,
                                   [item for item, _ in batch])
        job.add_done_callback(lambda done: self._finish(loop, worker, batch, done))

    def _finish(self, loop: asyncio.AbstractEventLoop, worker: int,
                batch: list[tuple[T, asyncio.Future[R]]], job: asyncio.Future[list[R]]) -> None:
        try:
            results = job.result()
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} results for {len(batch)} questions")
        except Exception as exc:  # noqa: BLE001 - every waiter of the batch gets the error
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
        else:
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)
        if loop is self._loop:
            self._free.add(worker)
            if self._pending:  # whatever queued meanwhile forms the next batch
                worker = min(self._free)
                self._free.discard(worker)
                self._start(loop, worker)

    async def aclose(self) -> None:
        for executor in self.executors:
            executor.shutdown(wait=True)
