"""Scale: 100k passages vs 1k — build, start-up, index size, RSS, query latency, ANN recall.

    python bench/scale.py [--sizes 1000,100000] [--source laws|notice] [--kinds flat,hnsw]

Synthetic passages recombine 3–6 real sentences: of the reference laws (``--source laws``,
default: 2,000 sentences, a real law vocabulary) or of the shipped notice (``notice``: 16
passages, so every term is in a large share of the 100k passages). Their vectors are the
normalised sum of the real model's sentence embeddings (embedding 100k passages with the model
would take hours on 2 cores and measures the model, not the index; see index_build.py for that
rate). A passage's keyword tokens are its sentences' tokens (each sentence tokenised once):
jieba's rate is measured by index_build.py, here the index itself is timed:

- build: ``Index`` from passages, vectors and known tokens (a rebuild after a change);
- start: ``load_index`` of the saved version (``bot serve`` starting on a built index), for
  each FAISS type (flat / hnsw: the HNSW graph is saved with the version);
- p50 / p99: one question after its encode (keyword search, FAISS, fusion), the question
  tokenised afresh each time, for each FAISS ``[index] type`` in ``--kinds``; every size and
  type answers each question in turn (interleaved), so the "vs 1k" ratio is not the drift of a
  shared machine between two minutes.

Flat FAISS search is compared with HNSW and IVF by recall@10 against flat.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, percentile, questions, rss_mb


def synthetic(sentences: list[str], vectors: np.ndarray, tokens: list[list[str]], n: int,
              seed: int = 7):  # noqa: ANN201
    """n passages of 3-6 sentences; their vectors and keyword tokens (by content hash)."""
    from bot.ingest.passages import Passage

    rng = random.Random(seed)
    passages, rows, known = [], np.zeros((n, vectors.shape[1]), dtype=np.float32), {}
    for i in range(n):
        picks = rng.sample(range(len(sentences)), rng.randint(3, 6))
        text = "".join(sentences[j] for j in picks)
        passages.append(Passage(f"s{i}", f"doc{i // 20}.txt", f"合成通知{i // 20}", "",
                                ("一", f"（{i % 20}）"), ("标题",), "section", text, text, str(i)))
        known[passages[-1].content_hash] = [t for j in picks for t in tokens[j]]
        v = vectors[picks].sum(axis=0)
        rows[i] = v / np.linalg.norm(v)
    return passages, rows, known


def source_sentences(source: str, index_passages: list, limit: int) -> list[str]:  # noqa: ANN001
    from bot.ingest.passages import split_sentences

    if source == "notice":
        texts = [p.text for p in index_passages]
    else:
        folder = ROOT / "bot" / "data" / "reference"
        texts = [f.read_text(encoding="utf-8") for f in sorted(folder.glob("*.md"))]
    found = sorted({s.strip() for t in texts for s in split_sentences(t)
                    if 8 < len(s.strip()) < 200 and not s.lstrip().startswith("#")})
    return random.Random(5).sample(found, min(limit, len(found)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,100000")
    parser.add_argument("--source", default="laws", choices=("laws", "notice"))
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--kinds", default="flat,hnsw", help="FAISS index types to search")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from bot.config import load_config
    from bot.search.embed import load_embedder
    from bot.search.index import Index, ann_index, load_index, open_or_build, save_index
    from bot.search.keyword import question_terms, tokenize
    from bot.search.retrieve import Retriever

    cfg = load_config(ROOT / "config.toml")
    embedder = load_embedder(cfg.model)
    index, _ = open_or_build(cfg.knowledge.dir, cfg.index.dir, embedder)
    sentences = source_sentences(args.source, index.passages, args.sentences)
    sentence_vectors = embedder.encode_passages(sentences)
    sentence_tokens = [tokenize(s) for s in sentences]
    qs = questions()
    query_vectors = embedder.encode_queries(qs)
    kinds = args.kinds.split(",")
    print(f"{len(sentences)} distinct sentences ({args.source}), {len(qs)} questions")
    print(f"{'passages':>9} {'build s':>8} {'start s':>8} {'disk MB':>8} {'RSS +MB':>8} "
          + " ".join(f"{k + ' p50':>9} {k + ' p99':>9} {'vs 1k':>6}" for k in kinds))
    rows: dict[int, str] = {}
    served: dict[tuple[int, str], Retriever] = {}
    largest: np.ndarray | None = None
    for n in (int(x) for x in args.sizes.split(",")):
        passages, vectors, tokens = synthetic(sentences, sentence_vectors, sentence_tokens, n)
        rss0 = rss_mb()
        started = time.perf_counter()
        built = Index(embedder.name, passages, vectors, {}, tokens=tokens)
        build = time.perf_counter() - started
        rss1 = rss_mb()
        tmp = Path(tempfile.mkdtemp())
        version = save_index(built, tmp)
        disk = sum(f.stat().st_size for f in version.iterdir()) / 1e6
        del built
        started = time.perf_counter()
        loaded = load_index(tmp, embedder.name)
        starts = {"flat": time.perf_counter() - started}
        for kind in kinds:
            index = loaded
            if kind != "flat":  # built once and saved; a start loads the graph
                save_index(Index(embedder.name, loaded.passages, loaded.vectors, {}, kind=kind,
                                 keyword=loaded.keyword), tmp)
                started = time.perf_counter()
                index = load_index(tmp, embedder.name, kind)
                starts[kind] = time.perf_counter() - started
            served[n, kind] = Retriever(index, embedder, cfg.retrieval)
        shutil.rmtree(tmp)
        rows[n] = (f"{n:>9} {build:>8.1f} {'/'.join(f'{s:.1f}' for s in starts.values()):>8} "
                   f"{disk:>8.1f} {rss1 - rss0:>8.0f} ")
        largest = vectors if n >= 10000 else largest
        del loaded
    # Every size and kind answers each question in turn, so drift from other jobs on the
    # machine hits the 1k baseline and the large sizes alike.
    times: dict[tuple[int, str], list[float]] = {key: [] for key in served}
    for _ in range(args.rounds):
        for q, v in zip(qs, query_vectors, strict=True):
            for key, retriever in served.items():
                question_terms.cache_clear()  # every question is tokenised, as a new one is
                t = time.perf_counter()
                retriever.search_vector(q, v)
                times[key].append((time.perf_counter() - t) * 1000)
    first = min(rows)
    for n, row in rows.items():
        cells = []
        for kind in kinds:
            p50, base = percentile(times[n, kind], 50), percentile(times[first, kind], 50)
            cells.append(f"{p50:>9.2f} {percentile(times[n, kind], 99):>9.2f} {p50 / base:>6.2f}")
        print(row + " ".join(cells), flush=True)
    print(f"load average {os.getloadavg()[0]:.2f}")
    if largest is not None:
        ann(largest, query_vectors, ann_index)


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
