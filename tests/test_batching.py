"""Micro-batching: concurrent questions share model calls and get exactly their own answers."""

from __future__ import annotations

import asyncio
import time

from bot.config import Config
from bot.engine import Engine


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
