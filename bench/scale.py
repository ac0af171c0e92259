"""Scale: 100k passages vs 1k — build time, index size, RSS, query latency, ANN recall.

    python bench/scale.py [--sizes 1000,100000]

Synthetic passages recombine 3–6 real sentences of the shipped notices. Their vectors are the
normalised sum of the real model's sentence embeddings (embedding 100k passages with the model
would take ~10 min on 2 cores and measures the model, not the index; see index_build.py for
that rate). Questions are encoded with the real model; the timed part is what depends on the
collection's size: keyword scoring, FAISS search and fusion. Flat FAISS search is compared
with HNSW and IVF by recall@10 against flat.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, percentile, questions, rss_mb


def synthetic(sentences: list[str], vectors: np.ndarray, n: int, seed: int = 7):
    from bot.ingest.passages import Passage

    rng = random.Random(seed)
    passages, rows = [], np.zeros((n, vectors.shape[1]), dtype=np.float32)
    for i in range(n):
        picks = rng.sample(range(len(sentences)), rng.randint(3, 6))
        text = "".join(sentences[j] for j in picks)
        passages.append(Passage(f"s{i}", f"doc{i // 20}.txt", f"合成通知{i // 20}", "",
                                ("一", f"（{i % 20}）"), ("标题",), "section", text, text, str(i)))
        v = vectors[picks].sum(axis=0)
        rows[i] = v / np.linalg.norm(v)
    return passages, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000")
    args = parser.parse_args()
    from bot.config import load_config
    from bot.embed import load_embedder
    from bot.index import Index, ann_index, open_or_build, save_index
    from bot.ingest.passages import split_sentences
    from bot.retrieve import Retriever

    cfg = load_config(ROOT / "config.toml")
    embedder = load_embedder(cfg.model)
    index, _ = open_or_build(cfg.knowledge.dir, cfg.index.dir, embedder)
    sentences = sorted({s.strip() for p in index.passages for s in split_sentences(p.text)
                        if len(s.strip()) > 8})
    sentence_vectors = embedder.encode_passages(sentences)
    qs = questions()
    query_vectors = embedder.encode_queries(qs)
    print(f"{len(sentences)} distinct sentences, {len(qs)} questions")
    print(f"{'passages':>9} {'build s':>8} {'disk MB':>8} {'RSS +MB':>8} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'p50 vs 1k':>9}")
    base_p50 = None
    for n in (int(x) for x in args.sizes.split(",")):
        passages, vectors = synthetic(sentences, sentence_vectors, n)
        rss0 = rss_mb()
        started = time.perf_counter()
        built = Index(embedder.name, passages, vectors, {})
        build = time.perf_counter() - started
        rss1 = rss_mb()
        tmp = Path(tempfile.mkdtemp())
        version = save_index(built, tmp)
        disk = sum(f.stat().st_size for f in version.iterdir()) / 1e6
        shutil.rmtree(tmp)
        retriever = Retriever(built, embedder, cfg.retrieval)
        times = []
        for _ in range(3):
            for q, v in zip(qs, query_vectors, strict=True):
                t = time.perf_counter()
                retriever.search_vector(q, v)
                times.append((time.perf_counter() - t) * 1000)
        p50, p99 = percentile(times, 50), percentile(times, 99)
        base_p50 = base_p50 or p50
        print(f"{n:>9} {build:>8.1f} {disk:>8.1f} {rss1 - rss0:>8.0f} {p50:>7.2f} {p99:>7.2f} "
              f"{p50 / base_p50:>9.2f}")
        if n >= 10000:
            ann(vectors, query_vectors, ann_index)
        del built, retriever


def ann(vectors: np.ndarray, queries: np.ndarray, ann_index) -> None:  # noqa: ANN001
    flat = ann_index(vectors, "flat")
    _, truth = flat.search(queries, 10)
    print(f"  {'FAISS':<6} {'build s':>8} {'search ms/q':>11} {'recall@10':>9}")
    for kind in ("flat", "hnsw", "ivf"):
        started = time.perf_counter()
        index = ann_index(vectors, kind)
        build = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(5):
            _, found = index.search(queries, 10)
        per_query = (time.perf_counter() - started) * 1000 / (5 * len(queries))
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)])
        print(f"  {kind:<6} {build:>8.1f} {per_query:>11.3f} {recall:>9.3f}")


if __name__ == "__main__":
    main()
