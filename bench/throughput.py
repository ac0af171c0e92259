"""Question throughput: micro-batched engine vs one model call per question, same run.

    python bench/throughput.py [--questions 256] [--concurrency 32] [--caps 32] [--rounds 1]

Three figures on the same questions: the model's own batched encode rate (the ceiling), the
one-at-a-time design (each question its own model call), and the engine's micro-batched
`asearch` with that many questions in flight (what the server does under load). ``--caps
8,16,32`` measures the batched figures for each most-questions-per-model-call (``[model]
query_batch``), the caps taking turns ``--rounds`` times, so load from other jobs hits each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from common import ROOT, questions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--caps", default="32", help="model-call sizes to compare")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    caps = [int(c) for c in args.caps.split(",")]
    from bot.config import load_config
    from bot.engine import Engine

    engine, _ = Engine.open(load_config(ROOT / "config.toml"))
    base = questions()
    qs = (base * (args.questions // len(base) + 1))[: args.questions]
    texts = [engine.retriever.query_text(q) for q in qs]
    engine.embedder.encode_queries(texts[:32])  # warm up

    def ceiling(cap: int) -> float:
        started = time.perf_counter()
        for i in range(0, len(texts), cap):
            engine.embedder.encode_queries(texts[i : i + cap])
        return len(texts) / (time.perf_counter() - started)

    started = time.perf_counter()
    for q in qs:
        engine.search(q)
    single = len(qs) / (time.perf_counter() - started)

    async def batched(cap: int) -> float:
        gate = asyncio.Semaphore(args.concurrency)
        engine.batcher.max_batch = cap

        async def one(q: str) -> None:
            async with gate:
                await engine.asearch(q)

        begun = time.perf_counter()
        await asyncio.gather(*(one(q) for q in qs))
        return len(qs) / (time.perf_counter() - begun)

    async def measure() -> dict[int, tuple[float, float, float]]:
        best: dict[int, tuple[float, float, float]] = {}
        for _ in range(args.rounds):
            for cap in caps:
                b = engine.batcher
                calls, items = b.batches, b.items
                top, micro = ceiling(cap), await batched(cap)
                mean = (b.items - items) / max(b.batches - calls, 1)
                if cap not in best or micro > best[cap][1]:
                    best[cap] = (top, micro, mean)
        await engine.aclose()
        return best

    best = asyncio.run(measure())
    print(f"{len(qs)} questions, {args.concurrency} in flight; best of {args.rounds} round(s); "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"one model call per question      {single:7.1f} q/s")
    for cap, (top, micro, mean) in best.items():
        print(f"cap {cap:>2}: model batched encode (ceiling) {top:7.1f} q/s; micro-batched "
              f"engine (asearch) {micro:7.1f} q/s = {micro / top:4.2f}x ceiling, "
              f"{micro / single:4.2f}x one-at-a-time; mean batch {mean:4.1f}")


if __name__ == "__main__":
    main()
