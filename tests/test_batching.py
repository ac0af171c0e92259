"""Micro-batching: concurrent questions share model calls and get exactly their own answers."""

from __future__ import annotations

import asyncio
import threading
import time

from bot.config import Config
from bot.engine import Engine
from bot.search.batching import MicroBatcher


async def test_concurrent_questions_share_model_calls(hashing_config: Config) -> None:
    engine, _ = Engine.open(hashing_config)
    sizes: list[int] = []
    encode = engine.embedder.encode_queries

    def slow_encode(texts: list[str]):  # noqa: ANN202
        sizes.append(len(texts))
        time.sleep(0.05)
        return encode(texts)

    engine.embedder.encode_queries = slow_encode  # type: ignore[method-assign]
    questions = ["文号是多少", "数字工会要怎么建设", "安全生产", "", "职代会"] * 4
    try:
        results = await asyncio.gather(*(engine.asearch(q) for q in questions))
    finally:
        await engine.aclose()
    assert sum(sizes) == 16 and len(sizes) < 16 and max(sizes) > 1
    for question, result in zip(questions, results, strict=True):
        alone = engine.search(question)
        assert result.question == question.strip()
        assert [h.passage.id for h in result.hits] == [h.passage.id for h in alone.hits]
        assert result.answered == alone.answered


async def test_a_failing_batch_fails_only_its_waiters(hashing_config: Config) -> None:
    engine, _ = Engine.open(hashing_config)
    encode = engine.embedder.encode_queries
    calls = 0

    def flaky(texts: list[str]):  # noqa: ANN202
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("model hiccup")
        return encode(texts)

    engine.embedder.encode_queries = flaky  # type: ignore[method-assign]
    try:
        first = await asyncio.gather(engine.asearch("文号是多少"), return_exceptions=True)
        second = await engine.asearch("文号是多少")
    finally:
        await engine.aclose()
    assert isinstance(first[0], RuntimeError)
    assert second.hits


async def test_two_workers_run_two_batches_at_once_and_a_lone_item_on_the_first() -> None:
    started: list[tuple[str, list[int]]] = []
    both = threading.Barrier(2, timeout=5)  # breaks (and the test fails) unless two run at once

    def work(items: list[int]) -> list[int]:
        started.append((threading.current_thread().name, items))
        if items[0] < 2:
            both.wait()
        return [i * 10 for i in items]

    batcher: MicroBatcher[int, int] = MicroBatcher(work, max_batch=8, workers=2)
    try:
        assert await asyncio.gather(*(batcher.submit(i) for i in range(6))) == [
            0, 10, 20, 30, 40, 50]
        assert await batcher.submit(7) == 70
    finally:
        await batcher.aclose()
    assert started[0][1] == [0] and started[1][1] == [1]  # both started at once, not queued
    assert sorted(i for _, items in started[2:-1] for i in items) == [2, 3, 4, 5]
    assert started[-1] == ("batch0_0", [7])  # alone again: the first worker's thread
