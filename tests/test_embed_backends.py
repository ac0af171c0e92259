"""The ONNX backend embeds exactly as sentence-transformers on torch does (bot/search/embed.py).

fp32 ONNX is the default because it does not move a single score: the index and the
out-of-scope calibration carry over from torch. int8 is an option that does move them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from bot.config import ModelConfig
from bot.search.embed import (
    OnnxEmbedder,
    SentenceTransformerEmbedder,
    load_embedder,
    padding_groups,
)
from bot.search.model_convert import ModelUnavailable
from bot.search.model_onnx import FP32_FILE, FUSED_FILE, ONNX_DIR, read_pipeline
from tests.conftest import ROOT

DEV = ROOT.parent / "shared" / "eval" / "dev_questions.jsonl"
EDGE_CASES = [
    "a",
    "  多个   空格\t和全角　空格 ａｂｃ①  ",
    "How can a migrant worker join the trade union?",
    "😀🎉 ？？？",
]
LONG = "工会组织" * 200  # past the 512-token limit: truncated the same way


@pytest.fixture(scope="module")
def torch_embedder(model_path: str) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(ModelConfig(name=model_path, backend="torch"))


@pytest.fixture(scope="module")
def onnx_embedder(model_path: str) -> OnnxEmbedder:
    return OnnxEmbedder(ModelConfig(name=model_path, backend="onnx"))


def _questions() -> list[str]:
    qs = ["我是送外卖的，工会能帮我维权吗？", "文号是多少", "工会会费怎么交"]
    if DEV.exists():
        lines = DEV.read_text(encoding="utf-8").splitlines()
        qs += [json.loads(line)["q"] for line in lines if line.strip()]
    return qs + EDGE_CASES


def _passages(seed_text: str) -> list[str]:
    lines = [line for line in seed_text.splitlines() if len(line.strip()) > 20]
    return [*lines[:30], *EDGE_CASES, LONG]


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    assert a.shape == b.shape
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_onnx_is_the_default_backend(model_path: str) -> None:
    embedder = load_embedder(ModelConfig(name=model_path))
    assert isinstance(embedder, OnnxEmbedder)
    assert (Path(model_path) / ONNX_DIR / FP32_FILE).is_file()  # exported with the conversion


def test_fp32_onnx_matches_torch(torch_embedder, onnx_embedder, seed_text: str) -> None:
    assert onnx_embedder.name == torch_embedder.name  # same vectors: the index carries over
    assert onnx_embedder.dim == torch_embedder.dim == 384
    questions, passages = _questions(), _passages(seed_text)
    for ours, ref, texts in (
        (onnx_embedder.encode_queries(questions), torch_embedder.encode_queries(questions),
         questions),
        (onnx_embedder.encode_passages(passages), torch_embedder.encode_passages(passages),
         passages),
    ):  # fmt: skip
        np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
        cosines = _cosines(ours, ref)
        assert cosines.min() >= 0.9999, dict(zip(texts, cosines.round(6), strict=True))


def test_single_questions_run_the_fused_graph_with_torchs_embeddings(
        torch_embedder, onnx_embedder, model_path: str) -> None:  # fmt: skip
    """One question per call runs ONNX Runtime's fused graph, made with the conversion: its
    embeddings are still torch's."""
    assert (Path(model_path) / ONNX_DIR / FUSED_FILE).is_file()
    assert onnx_embedder.single is not onnx_embedder.session
    questions = _questions()
    single = np.vstack([onnx_embedder.encode_queries([q]) for q in questions])
    cosines = _cosines(single, torch_embedder.encode_queries(questions))
    assert cosines.min() >= 0.9999, dict(zip(questions, cosines.round(6), strict=True))


def test_folder_converted_before_the_fused_graph_gets_it(tmp_path: Path, model_path: str,
                                                         onnx_embedder) -> None:
    """A model folder without the fused graph (converted by an earlier version) is fused on
    first load, offline, sharing the exported graph's weights file."""
    source = Path(model_path)
    folder = tmp_path / "model"
    for path in source.rglob("*"):
        dest = folder / path.relative_to(source)
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
        elif not path.name.startswith(FUSED_FILE) and "qint8" not in path.name:
            dest.parent.mkdir(parents=True, exist_ok=True)
            if path.parent.name == ONNX_DIR:  # onnx refuses linked weights files
                shutil.copy(path, dest)
            else:  # model.safetensors: 470 MB that the ONNX backend does not read
                dest.symlink_to(path)
    embedder = OnnxEmbedder(ModelConfig(name=str(folder)))
    fused = folder / ONNX_DIR / FUSED_FILE
    assert fused.is_file() and embedder.single is not embedder.session
    weights = fused.with_name(FUSED_FILE + "_data").stat().st_size
    assert weights < (folder / ONNX_DIR / (FP32_FILE + "_data")).stat().st_size / 10
    questions = _questions()[:6]
    ours = np.vstack([embedder.encode_queries([q]) for q in questions])
    ref = np.vstack([onnx_embedder.encode_queries([q]) for q in questions])
    assert _cosines(ours, ref).min() >= 0.9999


def test_batches_match_single_questions(onnx_embedder) -> None:
    """Padding in a batch of mixed lengths does not change a question's vector."""
    questions = _questions()
    batched = onnx_embedder.encode_queries(questions)
    single = np.vstack([onnx_embedder.encode_queries([q]) for q in questions])
    assert _cosines(batched, single).min() >= 0.99999
    assert onnx_embedder.encode_queries([]).shape == (0, 384)


def test_side_by_side_model_calls_give_the_same_vectors(model_path: str) -> None:
    """Two workers (each call on one thread, passages' batches at once, questions from two
    threads together) give the vectors one worker gives."""
    one = OnnxEmbedder(ModelConfig(name=model_path, workers=1, batch_size=4))
    two = OnnxEmbedder(ModelConfig(name=model_path, workers=2, batch_size=4))
    questions = _questions()
    assert _cosines(two.encode_passages(questions), one.encode_passages(questions)).min() >= 0.99999
    with ThreadPoolExecutor(2) as pool:
        rows = list(pool.map(lambda q: two.encode_queries([q])[0], questions))
    assert _cosines(np.vstack(rows), one.encode_queries(questions)).min() >= 0.99999


def test_int8_onnx_is_close_but_recorded_as_another_model(onnx_embedder, model_path: str) -> None:
    int8 = OnnxEmbedder(ModelConfig(name=model_path, quantize=True))
    assert int8.name != onnx_embedder.name  # an index built with fp32 is re-embedded
    questions = _questions()
    cosines = _cosines(int8.encode_queries(questions), onnx_embedder.encode_queries(questions))
    assert cosines.min() >= 0.9 and cosines.mean() >= 0.97
    assert cosines.min() < 0.9999  # really the quantized graph


def test_unknown_backend_is_a_clear_error(model_path: str) -> None:
    with pytest.raises(ModelUnavailable, match="backend 'tensorflow' is not one of onnx, torch"):
        load_embedder(ModelConfig(name=model_path, backend="tensorflow"))


def test_model_the_onnx_backend_cannot_run_points_to_torch(tmp_path: Path,
                                                          model_path: str) -> None:
    modules = json.loads((Path(model_path) / "modules.json").read_text("utf-8"))
    dense = {"idx": 3, "name": "3", "path": "3_Dense",
             "type": "sentence_transformers.sentence_transformer.modules.dense.Dense"}
    (tmp_path / "modules.json").write_text(json.dumps([*modules, dense]), "utf-8")
    with pytest.raises(ModelUnavailable, match='set \\[model\\] backend = "torch"'):
        read_pipeline(tmp_path)
    with pytest.raises(ModelUnavailable, match="needs a local model folder"):
        OnnxEmbedder(ModelConfig(name="multilingual-e5-small"))  # a hub name


def test_onnx_backend_serves_without_torch(model_path: str) -> None:
    """Loading and querying the ONNX backend never imports torch (start-up time, memory)."""
    code = ("import sys; from bot.config import ModelConfig; "
            "from bot.search.embed import load_embedder; "
            f"e = load_embedder(ModelConfig(name={model_path!r})); e.encode_queries(['工会']); "
            "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') "
            "if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         check=True, env={"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"})
    assert out.stdout.strip() == "[]", out.stderr


def test_padding_groups_cover_every_row_once_with_little_padding() -> None:
    lengths = [12, 40, 13, 11, 38, 200, 12, 14, 39, 3]
    groups = padding_groups(lengths, most=3)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert all(1 <= len(g) <= 3 for g in groups)
    for group in groups:
        width = max(lengths[i] for i in group)
        assert width * len(group) <= 1.25 * sum(lengths[i] for i in group)
    assert groups[0] == [5]  # the long one is not padded against, nor pads the others
    assert padding_groups([], most=32) == []


@pytest.mark.parametrize(("flags", "mode"), [({"pooling_mode_cls_token": True}, "cls"),
                                             ({"pooling_mode_mean_tokens": True}, "mean"),
                                             ({"pooling_mode_mean_tokens": True,
                                               "pooling_mode_max_tokens": True}, None)])
def test_older_pooling_configs(tmp_path: Path, flags: dict, mode: str | None) -> None:
    kinds = ["base.modules.transformer.Transformer", "sentence_transformer.modules.Pooling"]
    modules = [{"path": "" if i == 0 else "1_Pooling", "type": f"sentence_transformers.{k}"}
               for i, k in enumerate(kinds)]
    (tmp_path / "modules.json").write_text(json.dumps(modules), "utf-8")
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(flags), "utf-8")
    if mode is None:
        with pytest.raises(ModelUnavailable, match="not supported by the ONNX backend"):
            read_pipeline(tmp_path)
    else:
        pipeline = read_pipeline(tmp_path)
        assert (pipeline.pooling, pipeline.max_length) == (mode, 512)
