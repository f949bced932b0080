"""A stored model on disk: its directory, its manifest, and how one is put in place.

Why apart from the store's operations (``agent.runtime.model_store``): this is the format
every reader shares (serving, training, ``rl.checkpoints``): a Hugging Face model directory
plus ``shopagent-model.json``, built in a hidden staging directory and renamed into place
(``publish``), so a failure never leaves half a model under a name.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.protocol.chat_template import TEMPLATE_VERSION, install_tools_template
from tools.atomic_write import replace_directory, write_text
from tools.errors import BadInput, NotFound
from tools.settings.config import Settings

MANIFEST_NAME = "shopagent-model.json"

# Trainer checkpoints carry optimizer and RNG state that serving never reads.
TRAINING_LEFTOVERS = (
    "optimizer.pt",
    "scheduler.pt",
    "rng_state*.pth",
    "trainer_state.json",
    "training_args.bin",
    "global_step*",
    MANIFEST_NAME,
)


class ModelNotFound(NotFound):
    """No stored model by that name."""


@dataclass(frozen=True, slots=True)
class StoredModel:
    name: str
    path: Path
    source: str
    created: str
    base: str | None
    template_version: int | None
    #: The writer prompt the model was trained on (``agent.protocol.writer_prompts``:
    #: ``conversation``, or ``expand``); None for a model that records none (``expand``, the
    #: prompt every policy before the conversation writer was trained on).
    writer_style: str | None = None

    def manifest(self) -> dict[str, Any]:
        data = asdict(self)
        del data["path"]
        return data


def refresh_template(stored: StoredModel) -> StoredModel:
    """Bring a stored model's tools template up to this version of the project, in place.

    The template is the project's, not the model's (``template_version`` None means the model
    keeps its own and is left alone), so a model stored by an older release would otherwise
    render older prompts than the code that reads its replies expects. Only the tokenizer files
    change; each is replaced atomically, then the manifest.
    """
    if stored.template_version is None or stored.template_version >= TEMPLATE_VERSION:
        return stored
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(stored.path)
    install_tools_template(tokenizer)
    staging = stored.path / f".template-{uuid.uuid4().hex[:8]}"
    try:
        tokenizer.save_pretrained(staging)
        for written in staging.iterdir():
            written.replace(stored.path / written.name)
        refreshed = StoredModel(**{**asdict(stored), "template_version": TEMPLATE_VERSION})
        write_manifest(stored.path, refreshed)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return refreshed


def write_manifest(directory: Path, stored: StoredModel) -> None:
    write_text(directory / MANIFEST_NAME, json.dumps(stored.manifest(), indent=2) + "\n")


def read_model(path: Path) -> StoredModel:
    manifest_path = path / MANIFEST_NAME
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
        return StoredModel(
            name=str(data["name"]),
            path=path,
            source=str(data["source"]),
            created=str(data["created"]),
            base=data.get("base"),
            template_version=data.get("template_version"),
            writer_style=data.get("writer_style"),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BadInput(f"{manifest_path}: unreadable model manifest ({error})") from None


def publish(
    settings: Settings,
    name: str,
    write: Any,
    *,
    source: str,
    base: str | None,
    template_version: int | None,
    overwrite: bool,
    writer_style: str | None = None,
) -> StoredModel:
    """Build in a hidden staging directory and rename into place: a failure leaves no half model."""
    root = settings.models_dir
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".staging-{name}-{uuid.uuid4().hex[:8]}"
    target = root / name
    try:
        staging.mkdir()
        write(staging)
        stored = StoredModel(
            name=name,
            path=target,
            source=source,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            base=base,
            template_version=template_version,
            writer_style=writer_style,
        )
        write_manifest(staging, stored)
        if target.exists() and not overwrite:
            raise BadInput(f"a model named {name!r} is already stored")
        replace_directory(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return stored


def check_source(source: Path) -> None:
    if not source.is_dir():
        raise BadInput(f"{source}: not a directory")
    if not (source / "config.json").is_file():
        if (source / "adapter_config.json").is_file():
            raise BadInput(
                f"{source}: a PEFT adapter, not a full model; merge it into its base first "
                "(peft: model.merge_and_unload().save_pretrained(...))"
            )
        raise BadInput(f"{source}: not a Hugging Face model directory (no config.json)")
    if not any((source / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        raise BadInput(f"{source}: no tokenizer files (save the tokenizer next to the model)")
    weights = [*source.glob("*.safetensors"), *source.glob("pytorch_model*.bin")]
    if not weights:
        raise BadInput(f"{source}: no model weights (*.safetensors or pytorch_model*.bin)")


def base_of(source: Path) -> str | None:
    """What the source was made from: its manifest's name if it came from the store."""
    manifest = source / MANIFEST_NAME
    if manifest.is_file():
        try:
            return str(json.loads(manifest.read_text(encoding="utf-8"))["name"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
    try:
        config = json.loads((source / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name_or_path = config.get("_name_or_path")
    return str(name_or_path) if name_or_path else None
