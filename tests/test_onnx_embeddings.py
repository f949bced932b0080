"""The ONNX Runtime path of the MiniLM encoder: same vectors as torch, exported once, and
torch whenever the export fails.

One real export (the package's model files, ~10 s of CPU) is shared by the session
(``embedding_exports``); the tests that need another export fake it by copying that one, so
they stay fast.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tools.errors import BadInput
from tools.search import embeddings
from tools.search.embeddings import (
    BUNDLED_MODEL,
    EXPORT_RECORD,
    ONNX_TOLERANCE,
    MiniLMEmbeddingFunction,
    OnnxEncoder,
    TorchEncoder,
    _groups,
    load_encoder,
    load_sentence_model,
    model_path,
    onnx_export_dir,
    open_onnx_encoder,
)
from tools.settings.config import EMBEDDING_BACKEND_ENV

#: Short and long (past the 256-token truncation), accented, CJK, empty: one padded call.
TEXTS = [
    "wireless computer mouse",
    "Logitech M185 Wireless Mouse. Logitech. Mice. Compact, 12-month battery life.",
    "Akku-Bohrschrauber für Heimwerker, 18 V",
    "無線マウス",
    "",
    "cordless drill " * 200,
]


#: The label the product's own loads give the bundled model's export (``load_encoder``).
LABEL = BUNDLED_MODEL


@pytest.fixture()
def exported(embedding_exports: Path) -> Path:
    """A cache root holding one real export of the bundled model: the session's
    (``tests/conftest.py``), which fresh homes are seeded with; read here, never changed."""
    return embedding_exports


@pytest.fixture()
def fresh_encoders(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[Any, Any]]:
    """No encoder loaded yet in this process; the process's own come back afterwards."""
    encoders: dict[Any, Any] = {}
    monkeypatch.setattr(embeddings, "_models", encoders)
    yield encoders


def copy_export(source_root: Path) -> Any:
    """A stand-in for ``export_onnx`` that copies the module's real export (no torch)."""
    source = next(p for p in source_root.iterdir() if not p.name.startswith("."))
    calls: list[Path] = []

    def fake(path: Path, target: Path) -> float:
        calls.append(target)
        for file in source.iterdir():
            shutil.copy2(file, target / file.name)
        return 0.0

    fake.calls = calls  # type: ignore[attr-defined]
    return fake


def test_onnx_vectors_equal_the_torch_vectors_within_the_tolerance(exported: Path) -> None:
    onnx = open_onnx_encoder(model_path(), exported, label=LABEL)
    torch = TorchEncoder(load_sentence_model())
    ours, reference = onnx.encode(TEXTS, batch_size=4), torch.encode(TEXTS, batch_size=4)
    assert ours.shape == reference.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert float(np.max(1.0 - np.sum(ours * reference, axis=1))) <= ONNX_TOLERANCE
    # Batching does not change a vector (each call pads to its own longest text).
    assert np.allclose(onnx.encode(TEXTS[:1], batch_size=1)[0], ours[0], atol=1e-6)


def test_the_export_is_cached_and_a_second_open_reuses_it(
    exported: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_export(path: Path, target: Path) -> float:
        raise AssertionError("exported again")

    monkeypatch.setattr(embeddings, "export_onnx", no_export)
    encoder = open_onnx_encoder(model_path(), exported, label=LABEL)
    assert isinstance(encoder, OnnxEncoder)
    target = onnx_export_dir(model_path(), exported, label=LABEL)
    assert encoder.directory == target and (target / EXPORT_RECORD).is_file()
    assert [p.name for p in exported.iterdir()] == [target.name]  # no staging folder left


def test_a_failed_export_falls_back_to_torch_and_leaves_nothing(
    shopagent_home: Path,
    fresh_encoders: dict[Any, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(path: Path, target: Path) -> float:
        (target / "model.onnx").write_bytes(b"half a model")
        raise RuntimeError("the exporter is gone")

    monkeypatch.setattr(embeddings, "export_onnx", broken)
    with caplog.at_level(logging.WARNING, logger=embeddings.__name__):
        function = MiniLMEmbeddingFunction(backend="onnx")
        vectors = function.encode(TEXTS[:2])
    assert function.encoder().backend == "torch"
    assert "the exporter is gone" in caplog.text
    reference = TorchEncoder(load_sentence_model()).encode(TEXTS[:2], batch_size=64)
    assert np.allclose(vectors, reference, atol=1e-6)
    cache = shopagent_home / "models" / embeddings.EXPORT_CACHE
    assert not cache.exists() or list(cache.iterdir()) == []
    assert len(fresh_encoders) == 1  # the fallback is kept: no second try in this process


def test_a_damaged_export_is_replaced(exported: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "cache"
    target = onnx_export_dir(model_path(), root, label=LABEL)
    shutil.copytree(onnx_export_dir(model_path(), exported, label=LABEL), target)
    (target / "model.onnx").write_bytes(b"truncated")
    fake = copy_export(exported)
    monkeypatch.setattr(embeddings, "export_onnx", fake)
    encoder = open_onnx_encoder(model_path(), root, label=LABEL)
    assert len(fake.calls) == 1 and encoder.directory == target
    assert encoder.encode(TEXTS[:1], batch_size=1).shape == (1, 384)
    assert [p.name for p in root.iterdir()] == [target.name]


def test_an_export_another_process_finished_first_is_used(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "cache"
    target = onnx_export_dir(model_path(), root, label=LABEL)
    copy = copy_export(exported)

    def racing(path: Path, staging: Path) -> float:
        shutil.copytree(onnx_export_dir(model_path(), exported, label=LABEL), target)
        return copy(path, staging)

    monkeypatch.setattr(embeddings, "export_onnx", racing)
    assert open_onnx_encoder(model_path(), root, label=LABEL).directory == target
    assert [p.name for p in root.iterdir()] == [target.name]


def test_the_setting_picks_the_backend(
    fresh_encoders: dict[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(EMBEDDING_BACKEND_ENV, "torch")
    assert load_encoder().backend == "torch"
    assert MiniLMEmbeddingFunction().encoder().backend == "torch"
    monkeypatch.setenv(EMBEDDING_BACKEND_ENV, "tensorflow")
    with pytest.raises(BadInput, match=EMBEDDING_BACKEND_ENV):
        load_encoder()
    with pytest.raises(BadInput, match="backend must be one of"):
        MiniLMEmbeddingFunction(backend="tensorflow")
    # Not part of the persisted config: a collection built by either backend reads alike.
    assert "backend" not in MiniLMEmbeddingFunction(backend="torch").get_config()


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_groups_cover_every_text_once_within_the_limits(batch_size: int) -> None:
    lengths = [5, 300, 12, 12, 128, 2, 256, 40] * 5
    groups = list(_groups(lengths, batch_size, token_budget=512))
    assert sorted(i for group in groups for i in group) == list(range(len(lengths)))
    for group in groups:
        assert len(group) <= batch_size
        assert len(group) == 1 or len(group) * max(lengths[i] for i in group) <= 512
        assert lengths[group[0]] == max(lengths[i] for i in group)  # pads to its first


def test_staging_folders_of_dead_exports_are_removed(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that exits mid-export (a chat quit during its warm-up) leaves its staging
    folder; the next export deletes it, and leaves a live process's alone."""
    root = tmp_path / "cache"
    dead = root / ".minilm-0123.tmp-999999999-abcd"  # above any pid_max: no such process
    alive = root / f".minilm-0123.tmp-{os.getpid()}-abcd"
    for folder in (dead, alive):
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"half")
    monkeypatch.setattr(embeddings, "export_onnx", copy_export(exported))
    open_onnx_encoder(model_path(), root, label=LABEL)
    assert not dead.exists() and alive.exists()
