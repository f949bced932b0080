"""The converted copies ``evals.perf.bench_runtimes`` serves: a GGUF for llama.cpp and an ONNX
Runtime GenAI export, each made from one stored model directory and cached.

GGUF (``export_gguf``): llama.cpp's own converter (``convert_hf_to_gguf.py``) ships with
neither the ``gguf`` package nor the ``llama-cpp-python`` wheel, so the Llama tensors are
written here with ``gguf.GGUFWriter`` as that converter writes them: names through
``gguf.TensorNameMap`` for ``MODEL_ARCH.LLAMA``, the q/k projections permuted back to
llama.cpp's rotary layout, norms kept in F32, the rest as Q8_0 or F16, tied embeddings left
tied (no ``output.weight``). The metadata (hyper-parameters, the GPT-2 BPE vocabulary and
merges, the ``smollm`` pre-tokenizer) is copied from a reference GGUF of the same architecture
and vocabulary -- the bundled SmolLM2 GGUF the stored models were made from -- after checking
that the hyper-parameters and the vocabulary match the model directory's; the chat template is
the directory's own. ``check_gguf_against`` compares a conversion of the untrained base with
the reference's (dequantized) tensors, which validates names and permutation.

ONNX Runtime GenAI (``export_ortgenai``): its model builder
(``python -m onnxruntime_genai.models.builder``), run with the interpreter of the venv that
has ``onnxruntime-genai``, ``torch``, ``transformers`` and ``onnx``.

Both are cached under a work folder with a stamp of what they were made from; a stale or
half-written copy is made again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

GGUF_TYPES = ("q8_0", "f16")


def model_stamp(model_dir: Path) -> dict[str, Any]:
    """What identifies a model directory's weights: its manifest, else the weights' size and
    modification time."""
    manifest = model_dir / "shopagent-model.json"
    if manifest.is_file():
        return {"manifest": json.loads(manifest.read_text(encoding="utf-8"))}
    return {
        "weights": sorted(
            (p.name, p.stat().st_size, p.stat().st_mtime_ns)
            for p in model_dir.glob("*.safetensors")
        )
    }


@dataclass(frozen=True, slots=True)
class Export:
    """A converted copy: where it is, how long making it took, and whether it was made by
    this call (False: an earlier run's copy, still current, whose time is the recorded one)."""

    path: Path
    seconds: float
    made_now: bool


def _recorded(stamp_path: Path, stamp: Mapping[str, Any]) -> float | None:
    """The seconds recorded with a current stamp; None when the stamp is missing or stale."""
    try:
        found = json.loads(stamp_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    seconds = found.pop("seconds", None)
    return float(seconds) if found == json.loads(json.dumps(stamp)) and seconds else None


def _cached(
    target: Path, stamp_path: Path, stamp: Mapping[str, Any], make: Callable[[], object]
) -> Export:
    recorded = _recorded(stamp_path, stamp)
    if target.exists() and recorded is not None:
        return Export(target, recorded, made_now=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    make()
    seconds = time.perf_counter() - started
    stamp_path.write_text(
        json.dumps({**stamp, "seconds": round(seconds, 2)}, indent=2) + "\n", encoding="utf-8"
    )
    return Export(target, seconds, made_now=True)


# --- GGUF ---------------------------------------------------------------------------------


def _permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """HF's rotary layout (halves) to llama.cpp's (interleaved pairs), per head: what
    ``convert_hf_to_gguf.py``'s ``LlamaModel.permute`` does."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def gguf_tensors(model_dir: Path) -> dict[str, np.ndarray]:
    """The model directory's Llama weights under llama.cpp's names, as float32, permuted."""
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    if config.get("model_type") != "llama":
        raise ValueError(f"{model_dir.name}: not a llama model ({config.get('model_type')})")
    n_head = int(config["num_attention_heads"])
    n_kv = int(config.get("num_key_value_heads") or n_head)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, int(config["num_hidden_layers"]))
    weights: dict[str, np.ndarray] = {}
    for shard in sorted(model_dir.glob("*.safetensors")):
        weights.update(load_file(str(shard)))
    out: dict[str, np.ndarray] = {}
    for name, data in weights.items():
        if name.endswith("rotary_emb.inv_freq"):
            continue
        if name == "lm_head.weight" and config.get("tie_word_embeddings"):
            continue
        data = data.astype(np.float32)
        if name.endswith("q_proj.weight"):
            data = _permute(data, n_head)
        elif name.endswith("k_proj.weight"):
            data = _permute(data, n_kv)
        new = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if new is None:
            raise ValueError(f"{model_dir.name}: no GGUF name for tensor {name}")
        out[new] = data
    return out


def _check_metadata(model_dir: Path, reader: Any) -> None:
    """The reference GGUF must describe the same architecture and vocabulary."""
    from transformers import AutoTokenizer

    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))

    def field(key: str) -> Any:
        found = reader.fields.get(key)
        return found.contents() if found is not None else None

    expected = {
        "llama.block_count": config["num_hidden_layers"],
        "llama.embedding_length": config["hidden_size"],
        "llama.feed_forward_length": config["intermediate_size"],
        "llama.attention.head_count": config["num_attention_heads"],
        "llama.attention.head_count_kv": config["num_key_value_heads"],
        "llama.vocab_size": config["vocab_size"],
        "tokenizer.ggml.eos_token_id": config["eos_token_id"],
    }
    rope = (config.get("rope_parameters") or {}).get("rope_theta", config.get("rope_theta"))
    if rope is not None:
        expected["llama.rope.freq_base"] = float(rope)
    wrong = {k: (field(k), v) for k, v in expected.items() if field(k) != v}
    if wrong:
        raise ValueError(f"the reference GGUF does not match {model_dir.name}: {wrong}")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    tokens = field("tokenizer.ggml.tokens")
    if list(tokens) != vocab:
        raise ValueError(f"the reference GGUF's vocabulary is not {model_dir.name}'s")


def write_gguf(model_dir: Path, target: Path, qtype: str, reference: Path) -> Path:
    """Write ``model_dir`` as a GGUF (``qtype``: q8_0 or f16) with ``reference``'s metadata."""
    import gguf

    if qtype not in GGUF_TYPES:
        raise ValueError(f"qtype must be one of {GGUF_TYPES}, not {qtype!r}")
    reader = gguf.GGUFReader(str(reference))
    _check_metadata(model_dir, reader)
    file_type = {
        "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
        "f16": gguf.LlamaFileType.MOSTLY_F16,
    }[qtype]
    partial = target.with_name(target.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), "llama")
    skip = {
        gguf.Keys.General.ARCHITECTURE,
        gguf.Keys.General.FILE_TYPE,
        gguf.Keys.General.QUANTIZATION_VERSION,
        gguf.Keys.Tokenizer.CHAT_TEMPLATE,
        gguf.Keys.General.NAME,
    }
    for field in reader.fields.values():
        if field.name in skip or field.name.startswith("GGUF."):
            continue
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub_type)
    writer.add_name(model_dir.name)
    writer.add_file_type(file_type)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    template = model_dir / "chat_template.jinja"
    if template.is_file():
        writer.add_chat_template(template.read_text(encoding="utf-8"))
    for name, data in gguf_tensors(model_dir).items():
        if data.ndim <= 1 or name.endswith("_norm.weight"):
            writer.add_tensor(name, data.astype(np.float32))
        elif qtype == "f16":
            writer.add_tensor(name, data.astype(np.float16))
        else:
            kind = gguf.GGMLQuantizationType.Q8_0
            writer.add_tensor(name, gguf.quants.quantize(data, kind), raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(partial, target)
    return target


def export_gguf(
    model_dir: Path, work_dir: Path, qtype: str = "q8_0", reference: Path | None = None
) -> Export:
    """``model_dir`` as a GGUF under ``work_dir`` (``qtype``: q8_0 or f16), made now unless a
    current copy is there."""
    if reference is None:
        from agent.runtime.model_store import bundled_gguf

        reference = bundled_gguf()
    target = work_dir / f"{model_dir.name}.{qtype}.gguf"
    stamp = {**model_stamp(model_dir), "qtype": qtype, "reference": reference.name}
    return _cached(
        target,
        target.with_name(target.name + ".json"),
        stamp,
        lambda: write_gguf(model_dir, target, qtype, reference),
    )


def check_gguf_against(model_dir: Path, reference: Path) -> float:
    """The largest absolute difference between this module's tensors for ``model_dir`` and
    ``reference``'s dequantized ones: for a model directory made from ``reference`` (the
    untrained base), a value at float rounding level shows the names and permutation right."""
    import gguf

    reader = gguf.GGUFReader(str(reference))
    ours = gguf_tensors(model_dir)
    theirs = {t.name: t for t in reader.tensors}
    if set(ours) != set(theirs):
        raise ValueError(f"tensor names differ: {sorted(set(ours) ^ set(theirs))[:6]}")
    worst = 0.0
    for name, data in ours.items():
        tensor = theirs[name]
        ref = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(data.shape)
        worst = max(worst, float(np.max(np.abs(ref.astype(np.float32) - data))))
    return worst


# --- CTranslate2 -------------------------------------------------------------------------


def export_ct2(model_dir: Path, work_dir: Path) -> Export:
    """Time CTranslate2's int8 conversion of ``model_dir`` (into ``work_dir``, once). The
    server uses the model's own converted copy (``agent.runtime.ct2_model``); this copy only
    measures what making it costs."""
    from agent.runtime.ct2_model import COMPUTE_TYPE

    target = work_dir / f"{model_dir.name}.ctranslate2-{COMPUTE_TYPE}"

    def make() -> None:
        import ctranslate2

        converter = ctranslate2.converters.TransformersConverter(
            str(model_dir), low_cpu_mem_usage=True
        )
        converter.convert(str(target), quantization=COMPUTE_TYPE, force=True)

    stamp = {**model_stamp(model_dir), "quantization": COMPUTE_TYPE}
    return _cached(target, target.with_name(target.name + ".json"), stamp, make)


# --- ONNX Runtime GenAI --------------------------------------------------------------------


def export_ortgenai(
    model_dir: Path, work_dir: Path, python: Path, precision: str = "int4"
) -> Export:
    """``model_dir`` exported by ORT GenAI's model builder (CPU, ``precision``: int4, int8,
    fp32) under ``work_dir``, run with ``python`` (the builder's venv)."""
    target = work_dir / f"{model_dir.name}.ortgenai-{precision}"
    stamp = {**model_stamp(model_dir), "precision": precision, "execution": "cpu"}

    def make() -> None:
        staging = work_dir / f".{target.name}.partial"
        cache = work_dir / f".{target.name}.cache"
        shutil.rmtree(staging, ignore_errors=True)
        command = [
            str(python),
            *("-m", "onnxruntime_genai.models.builder"),
            *("-i", str(model_dir), "-o", str(staging), "-p", precision, "-e", "cpu"),
            *("-c", str(cache)),
        ]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
        log = work_dir / f"{target.name}.log"
        log.write_text(done.stdout + done.stderr, encoding="utf-8")
        shutil.rmtree(cache, ignore_errors=True)
        if done.returncode != 0 or not (staging / "genai_config.json").is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RuntimeError(f"the ORT GenAI builder failed ({log}): {last[:300]}")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)

    return _cached(target, target.with_name(target.name + ".json"), stamp, make)


def set_ortgenai_threads(export: Path, threads: int) -> None:
    """Hold the export's decoder session to ``threads`` intra-op threads (its config file)."""
    path = export / "genai_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    options = config["model"]["decoder"].setdefault("session_options", {})
    options["intra_op_num_threads"] = threads
    options["inter_op_num_threads"] = 1
    path.write_text(json.dumps(config, indent=4) + "\n", encoding="utf-8")
