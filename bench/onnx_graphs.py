"""The exported ONNX graph against ONNX Runtime's offline BERT fusions, by batch size, same run.

    python bench/onnx_graphs.py [--rounds 2] [--batches 1,8,16,32] [--threads 1,2]

The fused graph (``onnxruntime.transformers.optimizer``: Attention, SkipLayerNormalization,
BiasGelu, EmbedLayerNormalization; fp32, made offline into a temp folder) has 88 nodes where
the exported one has 464 after ONNX Runtime's own session optimizations. Both run the
question texts the engine encodes (prompt and synonyms included), one session per graph and
thread count, with the backend's session options, interleaved call by call so that load from
other jobs hits every variant alike. Per question: wall time and CPU time of this process
(CPU time is what decides throughput on two shared cores, and moves less with their load).
Embeddings are compared with the exported graph's.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, percentile, questions


def fuse(source: Path, dest: Path, heads: int, hidden: int) -> Path:
    """ONNX Runtime's transformer optimizer on the exported graph (offline, CPU, fp32)."""
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(str(source), model_type="bert", num_heads=heads, hidden_size=hidden,
                           opt_level=0, optimization_options=FusionOptions("bert"),
                           use_gpu=False)  # fmt: skip
    print("fused:", {k: v for k, v in model.get_fused_operator_statistics().items() if v})
    model.save_model_to_file(str(dest), use_external_data_format=True,
                             all_tensors_to_one_file=True)  # fmt: skip
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batches", default="1,8,16,32")
    parser.add_argument("--threads", default="1,2")
    args = parser.parse_args()
    import json

    import onnxruntime as ort

    from bot.config import load_config
    from bot.search.embed import OnnxEmbedder
    from bot.search.model_convert import resolve_model
    from bot.search.model_onnx import onnx_path
    from bot.search.retrieve import MAX_QUESTION
    from bot.search.synonyms import Synonyms

    cfg = load_config(ROOT / "config.toml")
    embedder = OnnxEmbedder(cfg.model)
    model_dir = Path(resolve_model(cfg.model.name, cfg.model.cache_dir))
    hf = json.loads((model_dir / "config.json").read_text("utf-8"))
    synonyms = Synonyms.load(cfg.retrieval.synonyms)
    texts = [cfg.model.query_prompt + synonyms.expand(q.strip()[:MAX_QUESTION])
             for q in questions()]  # fmt: skip
    rows = [e.ids for e in embedder.tokenizer.encode_batch(texts)]
    batches = [int(b) for b in args.batches.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        graphs = {"exported": onnx_path(model_dir, False),
                  "fused": fuse(onnx_path(model_dir, False), Path(tmp) / "fused.onnx",
                                hf["num_attention_heads"], hf["hidden_size"])}  # fmt: skip
        sessions = {}
        for name, path in graphs.items():
            for threads in (int(t) for t in args.threads.split(",")):
                options = ort.SessionOptions()
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                sessions[name, threads] = ort.InferenceSession(
                    str(path), options, providers=["CPUExecutionProvider"])
        names = {key: [i.name for i in s.get_inputs()] for key, s in sessions.items()}
        wall: dict[tuple, list[float]] = {}
        cpu: dict[tuple, list[float]] = {}
        vectors: dict[tuple, list[np.ndarray]] = {}
        for _ in range(args.rounds):
            for size in batches:
                for start in range(0, len(rows) - size + 1, size):
                    group = rows[start : start + size]
                    width = max(len(r) for r in group)
                    ids = np.full((len(group), width), embedder.pad_id, dtype=np.int64)
                    mask = np.zeros_like(ids)
                    for i, row in enumerate(group):
                        ids[i, : len(row)], mask[i, : len(row)] = row, 1
                    feed = {"input_ids": ids, "attention_mask": mask,
                            "token_type_ids": np.zeros_like(ids)}  # fmt: skip
                    for key, session in sessions.items():
                        inputs = {n: feed[n] for n in names[key]}
                        t, c = time.perf_counter(), time.process_time()
                        hidden = session.run(None, inputs)[0]
                        wall.setdefault((*key, size), []).append(
                            (time.perf_counter() - t) * 1000 / size)
                        cpu.setdefault((*key, size), []).append(
                            (time.process_time() - c) * 1000 / size)
                        if size == 1:
                            v = hidden[0].mean(axis=0)
                            vectors.setdefault(key, []).append(v / np.linalg.norm(v))
    print(f"{len(rows)} questions x {args.rounds} rounds, tokens p50 "
          f"{percentile([len(r) for r in rows], 50)}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'graph':<9} {'threads':>7} {'batch':>5} {'wall p50 ms/q':>13} {'cpu ms/q':>8} "
          f"{'vs exported':>11} {'cos min':>8}")
    for graph, threads, size in sorted(wall, key=lambda k: (k[2], k[1], k[0])):
        base = float(np.mean(cpu["exported", threads, size]))
        here = float(np.mean(cpu[graph, threads, size]))
        cos = ""
        if size == 1 and (graph, threads) in vectors:
            ref = np.stack(vectors["exported", threads])
            cos = f"{float((np.stack(vectors[graph, threads]) * ref).sum(axis=1).min()):.6f}"
        print(f"{graph:<9} {threads:>7} {size:>5} "
              f"{percentile(wall[graph, threads, size], 50):>13.2f} {here:>8.2f} "
              f"{here / base:>10.2f}x {cos:>8}")


if __name__ == "__main__":
    main()
