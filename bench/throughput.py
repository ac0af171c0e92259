"""Question throughput: micro-batched engine vs one model call per question, same run.

    python bench/throughput.py [--questions 256] [--concurrency 32]

Three figures on the same questions: the model's own batched encode rate (the ceiling), the
one-at-a-time design (each question its own model call), and the engine's micro-batched
`asearch` with that many questions in flight (what the server does under load).
"""

from __future__ import annotations

import argparse
import asyncio
import time

from common import ROOT, questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    from bot.config import load_config
    from bot.engine import Engine

    engine, _ = Engine.open(load_config(ROOT / "config.toml"))
    base = questions()
    qs = (base * (args.questions // len(base) + 1))[: args.questions]
    texts = [engine.retriever.query_text(q) for q in qs]
    engine.embedder.encode_queries(texts[:32])  # warm up

    started = time.perf_counter()
    for i in range(0, len(texts), 32):
        engine.embedder.encode_queries(texts[i : i + 32])
    ceiling = len(texts) / (time.perf_counter() - started)

    started = time.perf_counter()
    for q in qs:
        engine.search(q)
    single = len(qs) / (time.perf_counter() - started)

    async def batched() -> float:
        gate = asyncio.Semaphore(args.concurrency)

        async def one(q: str) -> None:
            async with gate:
                await engine.asearch(q)

        begun = time.perf_counter()
        await asyncio.gather(*(one(q) for q in qs))
        rate = len(qs) / (time.perf_counter() - begun)
        await engine.aclose()
        return rate

    micro = asyncio.run(batched())
    b = engine.batcher
    print(f"{len(qs)} questions, {args.concurrency} in flight; "
          f"{b.batches} model calls, mean batch {b.items / max(b.batches, 1):.1f}")
    print(f"model batched encode (ceiling)   {ceiling:7.1f} q/s")
    print(f"one model call per question      {single:7.1f} q/s   {single / ceiling:5.2f}x ceiling")
    print(f"micro-batched engine (asearch)   {micro:7.1f} q/s   {micro / ceiling:5.2f}x ceiling, "
          f"{micro / single:5.2f}x one-at-a-time")


if __name__ == "__main__":
    main()
