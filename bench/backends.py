"""Bare question encoding per backend: torch fp32 (baseline), ONNX fp32, ONNX int8, same run.

    python bench/backends.py [--passes 2]

Each backend runs in its own process (torch's and ONNX Runtime's thread pools would otherwise
spin against each other) and encodes every question of the dev and extra sets one at a time
(what a lone request costs) and in batches of 32 (the micro-batcher's ceiling). The backends
take turns, ``--passes`` times, and each keeps its best pass, so a burst of load from another
process does not decide the ratio. Embeddings are compared with torch's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, percentile, questions, rss_mb

BACKENDS = {"torch fp32": {"backend": "torch"}, "onnx fp32": {"backend": "onnx"},
            "onnx int8": {"backend": "onnx", "quantize": True}}  # fmt: skip


def measure(label: str, out: Path) -> None:
    """Child process: load one backend, time it, save timings and embeddings to ``out``."""
    from bot.config import load_config
    from bot.search.embed import load_embedder
    from bot.search.retrieve import MAX_QUESTION
    from bot.search.synonyms import Synonyms

    cfg = load_config(ROOT / "config.toml")
    before, started = rss_mb(), time.perf_counter()
    embedder = load_embedder(dataclasses.replace(cfg.model, **BACKENDS[label]))
    load_s, load_mb = time.perf_counter() - started, rss_mb() - before
    # The texts the engine really encodes: questions after synonym expansion.
    synonyms = Synonyms.load(cfg.retrieval.synonyms)
    texts = [synonyms.expand(q.strip()[:MAX_QUESTION]) for q in questions()]
    embedder.encode_queries(texts[:32])  # warm up
    single = []
    for text in texts * 2:
        started = time.perf_counter()
        embedder.encode_queries([text])
        single.append((time.perf_counter() - started) * 1000)
    started = time.perf_counter()
    for _ in range(2):
        for i in range(0, len(texts), 32):
            embedder.encode_queries(texts[i : i + 32])
    rate = 2 * len(texts) / (time.perf_counter() - started)
    np.save(out.with_suffix(".npy"), embedder.encode_queries(texts))
    out.write_text(json.dumps({"single": single, "rate": rate, "load_s": load_s,
                               "load_mb": load_mb}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure(args.child, Path(args.out))
        return
    best: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.passes):
            for i, label in enumerate(BACKENDS):
                out = Path(tmp) / f"{i}.json"
                subprocess.run([sys.executable, __file__, "--child", label, "--out", str(out)],
                               check=True)  # fmt: skip
                run = json.loads(out.read_text())
                run["p50"] = percentile(run["single"], 50)
                run["p99"] = percentile(run["single"], 99)
                print(f"pass {n + 1} {label:<11} p50 {run['p50']:6.2f} ms, batched "
                      f"{run['rate']:6.1f} q/s, loaded in {run['load_s']:.2f} s "
                      f"(RSS +{run['load_mb']:.0f} MB)", flush=True)
                if label not in best or run["p50"] < best[label]["p50"]:
                    best[label] = {**run, "vectors": np.load(out.with_suffix(".npy"))}
    torch = best["torch fp32"]
    print(f"\nbest of {args.passes} passes, {len(torch['single']) // 2} questions")
    print(f"{'backend':<11} {'p50 ms':>7} {'p99 ms':>7} {'speed-up':>8} {'batched q/s':>11} "
          f"{'vs torch':>8} {'cos min':>8} {'cos mean':>8}")
    for label, run in best.items():
        cos = (run["vectors"] * torch["vectors"]).sum(axis=1)
        print(f"{label:<11} {run['p50']:>7.2f} {run['p99']:>7.2f} "
              f"{torch['p50'] / run['p50']:>7.2f}x {run['rate']:>11.1f} "
              f"{run['rate'] / torch['rate']:>7.2f}x {float(np.min(cos)):>8.5f} "
              f"{float(np.mean(cos)):>8.5f}")


if __name__ == "__main__":
    main()
