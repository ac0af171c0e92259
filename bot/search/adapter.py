"""A linear map from layperson questions toward the wording of the articles that answer them.

The embedding model places "公司把我辞退了能要补偿吗" far from 第四十七条's 经济补偿按劳动者在本单位
工作的年限…; a 384×384 map trained on real question→article pairs (bench/train_adapter.py) moves
question vectors toward the articles' region. Passages are untouched, so the index stays valid;
the map is used only with the model it was trained for (or its int8 variant).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class QueryAdapter:
    """Question vectors -> adapted unit vectors (``v @ W``, renormalised)."""

    def __init__(self, matrix: np.ndarray, model: str) -> None:
        self.matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        self.model = model

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        moved = vectors.astype(np.float32) @ self.matrix
        norms = np.linalg.norm(moved, axis=1, keepdims=True)
        return moved / np.maximum(norms, 1e-12)

    def save(self, path: Path) -> None:
        np.savez_compressed(path, matrix=self.matrix.astype(np.float16), model=self.model)


@lru_cache(maxsize=4)
def load_adapter(path: Path | None, model: str, dim: int) -> QueryAdapter | None:
    """The adapter at ``path`` if it was trained for ``model``; None (with a log line) if not."""
    if path is None:
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            matrix, trained_for = data["matrix"], str(data["model"])
    except (OSError, KeyError, ValueError) as exc:
        log.warning("adapter: cannot read %s (%s); questions are not adapted", path, exc)
        return None
    # The int8 variant ("…+onnx-int8") is the same model: its vectors are within 0.98 cosine.
    base = Path(model).name.split(":")[-1].split("+")[0]
    if matrix.shape != (dim, dim) or Path(trained_for).name != base:
        # Expected whenever another model is configured: nothing to warn about.
        log.info("adapter: %s was trained for %s, not %s; questions are not adapted",
                 path, trained_for, model)
        return None
    return QueryAdapter(matrix, trained_for)
