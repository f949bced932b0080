"""Training run directories, data hashes, and publishing a trained policy into the model store.

A run lives in ``<home>/training/<run>/``: ``config.json`` (every knob, the base model, library
versions), ``data.json`` (SHA-256 of the trajectory file and of the exact training rows, with
counts), ``metrics.json`` (TRL's log history, step time, peak memory, what was registered) and
``adapter/`` (the LoRA weights, a few MB). The run is built in a hidden ``.<run>.partial``
directory and renamed into place when it finished, so a crash never leaves a run that looks
complete. The merged model (adapter folded into the base with PEFT's ``merge_and_unload``,
tokenizer with the tools template) is registered in the model store under the run's name, so
``shopagent serve --model <run>`` and ``shopagent eval run --model <run>`` load it like any
other stored model.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.protocol.chat_template import install_tools_template
from agent.runtime.model_store import (
    MANIFEST_NAME,
    StoredModel,
    register_model,
)
from tools.atomic_write import replace_directory, write_text
from tools.errors import BadInput, NotFound
from tools.settings.config import Settings

CONFIG_FILE = "config.json"
DATA_FILE = "data.json"
METRICS_FILE = "metrics.json"
ADAPTER_DIR = "adapter"
_RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_VERSIONED = ("torch", "transformers", "trl", "peft", "datasets", "accelerate")


def training_root(settings: Settings) -> Path:
    return settings.home / "training"


def default_run_name(algo: str) -> str:
    return f"{algo}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


def library_versions() -> dict[str, str]:
    versions = {}
    for package in _VERSIONED:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "missing"
    return versions


# -- hashes -----------------------------------------------------------------------------------


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def rows_sha256(rows: Iterable[Mapping[str, Any]]) -> str:
    """SHA-256 over the rows as canonical JSON lines, in order: the exact training data."""
    digest = hashlib.sha256()
    for row in rows:
        line = json.dumps(
            row, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str
        )
        digest.update(line.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


# -- the run directory ------------------------------------------------------------------------


class RunDirectory:
    """A run being written; ``finish`` moves it to its final name."""

    def __init__(self, settings: Settings, name: str, *, overwrite: bool = False) -> None:
        check_run_name(name)
        self.name = name
        self.final = training_root(settings) / name
        if self.final.exists() and not overwrite:
            raise BadInput(f"a training run named {name!r} exists at {self.final}")
        if (settings.models_dir / name / MANIFEST_NAME).is_file() and not overwrite:
            raise BadInput(
                f"a model named {name!r} is already stored; choose another run name "
                "(the trained model is registered under the run's name)"
            )
        self.overwrite = overwrite
        self.path = training_root(settings) / f".{name}.partial-{uuid.uuid4().hex[:8]}"
        self.path.mkdir(parents=True)

    @property
    def adapter_dir(self) -> Path:
        return self.path / ADAPTER_DIR

    def write_json(self, filename: str, data: Mapping[str, Any]) -> Path:
        """Written atomically: a reader sees the old file or the new one."""
        target = self.path / filename
        write_text(target, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        return target

    def finish(self) -> Path:
        if self.final.exists() and not self.overwrite:
            raise BadInput(f"a training run named {self.name!r} appeared at {self.final}")
        replace_directory(self.path, self.final)
        self.path = self.final
        return self.final

    def discard(self) -> None:
        if self.path != self.final:
            shutil.rmtree(self.path, ignore_errors=True)


def check_run_name(name: str) -> None:
    if not _RUN_NAME.match(name or ""):
        raise BadInput(
            f"bad run name {name!r}: use letters, digits, '.', '_' or '-' (64 at most), "
            "starting with a letter or digit (it becomes the model's name in the store)"
        )


def read_run(settings: Settings, name: str) -> dict[str, Any]:
    """A finished run's config, data and metrics, by name."""
    path = training_root(settings) / name
    if not (path / METRICS_FILE).is_file():
        raise NotFound(f"no finished training run {name!r} in {training_root(settings)}")
    return {
        filename.removesuffix(".json"): json.loads((path / filename).read_text(encoding="utf-8"))
        for filename in (CONFIG_FILE, DATA_FILE, METRICS_FILE)
    }


# -- publishing -------------------------------------------------------------------------------


def merge_and_register(
    settings: Settings,
    peft_model: Any,
    tokenizer: Any,
    name: str,
    *,
    base: str,
    workdir: Path,
    overwrite: bool = False,
) -> StoredModel:
    """Fold the LoRA adapter into the base weights and store the result as model ``name``.

    The merged directory is a plain HF model (no PEFT needed to load it), with the tools chat
    template on its tokenizer; it is written under ``workdir`` and copied into the store.
    """
    merged = peft_model.merge_and_unload()
    target = workdir / "merged"
    try:
        merged.save_pretrained(target)
        install_tools_template(tokenizer)
        tokenizer.save_pretrained(target)
        return register_model(settings, target, name, base=base, overwrite=overwrite)
    finally:
        shutil.rmtree(target, ignore_errors=True)
