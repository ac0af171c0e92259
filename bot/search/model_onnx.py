"""Export a local sentence-transformers model to ONNX: the build step of the ONNX backend.

The transformer is traced once with torch (at `bot convert-model` time, offline) into
``<model>/onnx/model.onnx``, the layout sentence-transformers' own ONNX backend reads: inputs
``input_ids``/``attention_mask``(/``token_type_ids``), output ``last_hidden_state``. Pooling and
normalisation stay outside the graph (see embed.OnnxEmbedder), so the file is interchangeable
with an optimum export. ``model_qint8.onnx`` is ONNX Runtime's dynamic int8 quantization of it.
``model_fused.onnx`` is the same fp32 graph after ONNX Runtime's offline BERT fusions (fused
attention, skip-layernorm, bias-gelu: 88 nodes instead of 464), which runs a lone question
faster but batches slower, so the backend uses it for single questions only (BENCHMARKS.md).
Weights are kept in a ``*.onnx_data`` file beside each graph (ONNX's external data); the fused
graph points at ``model.onnx_data`` for the tensors it shares with the exported one.

Serving needs only onnxruntime and tokenizers: torch is imported here, never on the request path.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.search.model_convert import ModelUnavailable

log = logging.getLogger(__name__)

ONNX_DIR = "onnx"
FP32_FILE = "model.onnx"
INT8_FILE = "model_qint8.onnx"
FUSED_FILE = "model_fused.onnx"
FUSABLE = ("bert", "roberta", "xlm-roberta")  # encoders onnxruntime's "bert" fusions handle
_TRANSFORMER, _POOLING, _NORMALIZE = "Transformer", "Pooling", "Normalize"


@dataclass(frozen=True)
class Pipeline:
    """What the ONNX backend must do around the graph, read from the model's modules.json."""

    transformer_dir: Path
    pooling: str  # "mean" or "cls"
    max_length: int
    lowercase: bool
    pad_id: int


def read_pipeline(model_dir: Path) -> Pipeline:
    """Transformer -> Pooling (mean or cls) -> optional Normalize; anything else needs torch."""
    try:
        modules = json.loads((model_dir / "modules.json").read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"{model_dir}: not a sentence-transformers folder ({exc})") from exc
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds not in ([_TRANSFORMER, _POOLING], [_TRANSFORMER, _POOLING, _NORMALIZE]):
        raise ModelUnavailable(f"{model_dir}: modules {kinds} are not supported by the ONNX "
                               'backend; set [model] backend = "torch"')  # fmt: skip
    transformer_dir = model_dir / modules[0].get("path", "")
    pooling = _json(model_dir / modules[1].get("path", "") / "config.json")
    flags = [k[len("pooling_mode_"):].removesuffix("_tokens").removesuffix("_token")
             for k, v in pooling.items() if k.startswith("pooling_mode_") and v is True]  # ST < 5
    mode = pooling.get("pooling_mode") or ("+".join(flags) if flags else "mean")
    if mode not in ("mean", "cls") or not pooling.get("include_prompt", True):
        raise ModelUnavailable(f"{model_dir}: pooling {pooling} is not supported by the ONNX "
                               'backend; set [model] backend = "torch"')  # fmt: skip
    st_config = _json(transformer_dir / "sentence_bert_config.json")
    hf_config = _json(transformer_dir / "config.json")
    tok_config = _json(transformer_dir / "tokenizer_config.json")
    limits = [st_config.get("max_seq_length"), tok_config.get("model_max_length"),
              hf_config.get("max_position_embeddings")]  # fmt: skip
    # sentence-transformers caps the tokenizer's limit at the position table's size.
    max_length = min((int(v) for v in limits if isinstance(v, int | float) and 0 < v < 1e9),
                     default=512)
    pad_id = hf_config.get("pad_token_id")
    return Pipeline(transformer_dir, mode, max_length, bool(st_config.get("do_lower_case", False)),
                    pad_id if isinstance(pad_id, int) else 0)  # masked out: any id will do


def _json(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text("utf-8")))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"cannot read {path}: {exc}") from exc


def onnx_path(model_dir: Path, quantize: bool) -> Path:
    return Path(model_dir) / ONNX_DIR / (INT8_FILE if quantize else FP32_FILE)


def ensure_onnx(model_dir: Path, quantize: bool = False) -> Path:
    """The ONNX file for ``model_dir``, exported (and quantized) first if it is missing.

    `bot convert-model` exports the default model already; this covers a model folder converted
    by an older version, another local model, and the int8 file (derived from the fp32 one).
    """
    model_dir = Path(model_dir)
    fp32 = onnx_path(model_dir, False)
    if not fp32.is_file():
        print(f"exporting {model_dir} to ONNX ({fp32}, once)", file=sys.stderr, flush=True)
        export_onnx(model_dir)
    if not quantize:
        return fp32
    int8 = onnx_path(model_dir, True)
    if not int8.is_file():
        print(f"quantizing {fp32} to int8 ({int8}, once)", file=sys.stderr, flush=True)
        quantize_onnx(fp32, int8)
    return int8


def ensure_fused(model_dir: Path) -> Path | None:
    """The fused fp32 graph for single questions, made first if missing (a model folder
    converted before it existed); None for a model the fusions do not apply to."""
    fused = Path(model_dir) / ONNX_DIR / FUSED_FILE
    if fused.is_file():
        return fused
    hf = _json(read_pipeline(Path(model_dir)).transformer_dir / "config.json")
    heads, hidden = hf.get("num_attention_heads"), hf.get("hidden_size")
    if hf.get("model_type") not in FUSABLE or not isinstance(heads, int) or not isinstance(
            hidden, int):  # fmt: skip
        return None
    print(f"fusing {onnx_path(model_dir, False)} for single questions ({fused}, once)",
          file=sys.stderr, flush=True)  # fmt: skip
    try:
        return fuse_onnx(ensure_onnx(model_dir), fused, heads, hidden)
    except Exception as exc:  # noqa: BLE001 - an optional speed-up: the exported graph serves
        log.warning("cannot fuse %s (%s); single questions use the exported graph", fused, exc)
        return None


def fuse_onnx(fp32: Path, dest: Path, heads: int, hidden: int) -> Path:
    """ONNX Runtime's transformer optimizer on the exported graph (offline, CPU, fp32).

    Tensors left as they were keep pointing into ``fp32``'s weights file (the word embeddings
    alone are 384 MB); only the fused ones are written to the new graph's own file.
    """
    import onnx
    from onnx.external_data_helper import set_external_data
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    exported = onnx.load(str(fp32), load_external_data=False)
    where = {t.name: t for t in exported.graph.initializer
             if t.data_location == onnx.TensorProto.EXTERNAL}  # fmt: skip

    def write(tmp: Path) -> None:
        level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # the optimizer's progress lines
        try:
            optimized = optimize_model(str(fp32), model_type="bert", num_heads=heads,
                                       hidden_size=hidden, opt_level=0, use_gpu=False,
                                       optimization_options=FusionOptions("bert"))  # fmt: skip
            optimized.topological_sort()
            model = optimized.model
        finally:
            logging.getLogger().setLevel(level)
        data = fp32.parent / (fp32.name + "_data")
        with open(data, "rb") as weights:
            for tensor in model.graph.initializer:
                old = where.get(tensor.name)
                if old is None or not tensor.HasField("raw_data"):
                    continue
                info = {e.key: e.value for e in old.external_data}
                if info.get("location") != data.name:
                    continue
                weights.seek(int(info.get("offset", 0)))
                if weights.read(int(info["length"])) == tensor.raw_data:  # unchanged: share it
                    set_external_data(tensor, data.name, int(info.get("offset", 0)),
                                      int(info["length"]))  # fmt: skip
                    tensor.data_location = onnx.TensorProto.EXTERNAL
                    tensor.ClearField("raw_data")
        _save_external(model, tmp)

    _publish(write, dest)
    return dest


def _publish(write: Any, dest: Path) -> None:
    """``write(tmp_dest)`` in a temp folder next to ``dest``, then move the files into place,
    the graph last: a reader that finds ``dest`` finds its weights file complete beside it."""
    work = dest.parent / f".{dest.name}.tmp-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        work.mkdir(parents=True)
        write(work / dest.name)
        for path in sorted(work.iterdir(), key=lambda p: p.name == dest.name):
            path.chmod(0o644)
            os.replace(path, dest.parent / path.name)
    except OSError as exc:
        raise ModelUnavailable(f"cannot write {dest}: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _save_external(model: Any, path: Path) -> None:
    """Weights in ``<name>_data`` beside the graph: ONNX Runtime maps that file instead of
    parsing 470 MB of protobuf, so a session opens in ~0.2 s instead of ~1.3 s."""
    import onnx

    onnx.save_model(model, str(path), save_as_external_data=True,
                    all_tensors_to_one_file=True, location=path.name + "_data")  # fmt: skip


def export_onnx(model_dir: Path) -> Path:
    """Trace the model's transformer into ``<model_dir>/onnx/model.onnx`` (fp32, dynamic axes)."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    pipeline = read_pipeline(model_dir)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:  # eager attention traces into plain ONNX ops that every runtime version has
        model = AutoModel.from_pretrained(pipeline.transformer_dir, attn_implementation="eager")
    except Exception as exc:  # noqa: BLE001 - missing files, unknown architectures...
        raise ModelUnavailable(f"cannot load {pipeline.transformer_dir} for export: {exc}") from exc
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    model.eval()
    import inspect

    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in inspect.signature(model.forward).parameters:
        names.append("token_type_ids")

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

    # Two rows of different lengths, so padding is part of the traced example.
    ids = torch.tensor([[0, 10, 11, 12, 2], [0, 13, 2, 1, 1]], dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.long)
    example = (ids, mask, torch.zeros_like(ids))[: len(names)]
    axes = {name: {0: "batch_size", 1: "sequence_length"} for name in [*names, "last_hidden_state"]}

    def write(tmp: Path) -> None:
        import onnx

        traced = tmp.with_name("traced.onnx")
        with torch.no_grad(), warnings.catch_warnings():
            # The TorchScript exporter is marked legacy, and tracing warns about Python-side
            # checks that are constant for an encoder (no cache, mask as long as the input).
            warnings.simplefilter("ignore")
            torch.onnx.export(LastHiddenState(), example, str(traced), dynamo=False,
                              input_names=names, output_names=["last_hidden_state"],
                              dynamic_axes=axes, opset_version=17)  # fmt: skip
        _save_external(onnx.load(str(traced)), tmp)
        traced.unlink()

    dest = onnx_path(model_dir, False)
    for stale in (FUSED_FILE, FUSED_FILE + "_data"):  # it points into the weights replaced here
        (dest.parent / stale).unlink(missing_ok=True)
    _publish(write, dest)
    return dest


def quantize_onnx(fp32: Path, dest: Path) -> Path:
    """ONNX Runtime's dynamic int8 quantization of the weights (activations quantized per call)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def write(tmp: Path) -> None:
        import onnx

        level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # "consider pre-processing" advice lines
        quantized = tmp.with_name("quantized.onnx")
        try:
            quantize_dynamic(fp32, quantized, weight_type=QuantType.QInt8, per_channel=False)
        finally:
            logging.getLogger().setLevel(level)
        _save_external(onnx.load(str(quantized)), tmp)
        quantized.unlink()

    _publish(write, dest)
    return dest
