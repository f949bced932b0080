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

``ship_policy`` (``shopagent model ship RUN``) copies a finished run's adapter (as float16,
half the bytes) into the package's ``agent/runtime/policies/<name>/`` with ``policy.json`` and
``MODEL_CARD.md``, and names it the default policy: ``shopagent model init`` then merges it
into the default model.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.protocol.chat_template import install_tools_template
from agent.runtime.model_store import (
    BASE_LOCAL_MODEL,
    DEFAULT_BASE,
    GGUF_FILE,
    GGUF_PACKAGE,
    MANIFEST_NAME,
    StoredModel,
    bundled_gguf,
    read_model,
    register_model,
)
from agent.runtime.policies import (
    ADAPTER_CONFIG,
    ADAPTER_FILES,
    ADAPTER_WEIGHTS,
    CARD_FILE,
    DEFAULT_FILE,
    POLICIES_DIR,
    POLICY_FILE,
    ShippedPolicy,
    check_policy_name,
    read_policy,
)
from tools.atomic_write import replace_directory, write_text
from tools.errors import BadInput, NotFound
from tools.file_hash import file_sha256
from tools.names import check_name
from tools.settings.config import Settings

CONFIG_FILE = "config.json"
DATA_FILE = "data.json"
METRICS_FILE = "metrics.json"
ADAPTER_DIR = "adapter"
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
    check_name("run", name, "it becomes the model's name in the store")


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
    writer_style: str | None = None,
) -> StoredModel:
    """Fold the LoRA adapter into the base weights and store the result as model ``name``
    (``writer_style``: the writer prompt it was trained on, kept in its manifest).

    The merged directory is a plain HF model (no PEFT needed to load it), with the tools chat
    template on its tokenizer; it is written under ``workdir`` and copied into the store.
    """
    merged = peft_model.merge_and_unload()
    target = workdir / "merged"
    try:
        merged.save_pretrained(target)
        install_tools_template(tokenizer)
        tokenizer.save_pretrained(target)
        return register_model(
            settings, target, name, base=base, overwrite=overwrite, writer_style=writer_style
        )
    finally:
        shutil.rmtree(target, ignore_errors=True)


# -- shipping a policy with the package -------------------------------------------------------


def ship_policy(
    settings: Settings,
    run_name: str,
    *,
    name: str | None = None,
    root: Path = POLICIES_DIR,
    evaluations: Iterable[Path] = (),
    commands: Iterable[str] = (),
    make_default: bool = True,
) -> ShippedPolicy:
    """Copy run ``run_name``'s LoRA adapter into ``root/<name>`` with its card; the new default.

    Only a run trained on the untrained base (a store model made from the bundled GGUF) can be
    shipped: the adapter is all that travels, and ``shopagent model init`` applies it to that
    base. ``evaluations`` are ``eval compare`` folders (``compare.json``) or eval runs
    (``report.json``) whose numbers go into the card; ``commands`` are the exact commands that
    made the data, the run and those numbers, in order. The folder is built beside its final
    place and swapped in whole (``replace_directory``); ``default.json`` is written last.
    """
    run = read_run(settings, run_name)
    name = name or run_name
    check_policy_name(name)
    adapter = training_root(settings) / run_name / ADAPTER_DIR
    missing = [f for f in ADAPTER_FILES if not (adapter / f).is_file()]
    if missing:
        raise NotFound(f"{adapter}: the run has no adapter ({', '.join(missing)} missing)")
    base_dir = Path(str(run["config"].get("base_model_dir", "")))
    if not (base_dir / MANIFEST_NAME).is_file():
        raise NotFound(f"the run's base model {base_dir} is no longer in the store")
    base = read_model(base_dir)
    if not base.source.startswith(f"pypi:{GGUF_PACKAGE}=="):
        raise BadInput(
            f"run {run_name!r} was trained on {base.name!r} ({base.source}), not on the untrained "
            f"base: its adapter does not apply to {BASE_LOCAL_MODEL}; train from "
            f"{BASE_LOCAL_MODEL} to ship"
        )
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".{name}.partial-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir()
        halve_adapter(adapter / ADAPTER_WEIGHTS, staging / ADAPTER_WEIGHTS)
        adapter_config = json.loads((adapter / ADAPTER_CONFIG).read_text(encoding="utf-8"))
        # the run's local path means nothing elsewhere; the store name is what init applies it to
        adapter_config["base_model_name_or_path"] = BASE_LOCAL_MODEL
        write_text(staging / ADAPTER_CONFIG, json.dumps(adapter_config, indent=2) + "\n")
        facts = policy_facts(
            name,
            run_name,
            run,
            base=base,
            adapter_sha256=file_sha256(staging / ADAPTER_WEIGHTS),
            evaluations=[evaluation_summary(Path(p)) for p in evaluations],
            commands=list(commands),
        )
        write_text(staging / POLICY_FILE, json.dumps(facts, indent=2, sort_keys=True) + "\n")
        write_text(staging / CARD_FILE, model_card(facts))
        replace_directory(staging, root / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if make_default:
        write_text(root / DEFAULT_FILE, json.dumps({"policy": name}, indent=2) + "\n")
    return read_policy(root / name)


def halve_adapter(source: Path, target: Path) -> None:
    """Write the adapter's float32 tensors as float16: half the bytes in the repository.

    ``shopagent model init`` loads them into the float32 base and merges there, so only the
    stored LoRA factors are rounded (about 3 significant digits; a LoRA factor is nowhere near
    float16's range limits, checked here rather than assumed).
    """
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    halved: dict[str, torch.Tensor] = {}
    with safe_open(str(source), framework="pt") as opened:
        metadata = opened.metadata()
        tensors = {key: opened.get_tensor(key) for key in opened.keys()}  # noqa: SIM118 (not a dict)
    for key, tensor in tensors.items():
        if tensor.dtype == torch.float32:
            half = tensor.to(torch.float16)
            if not torch.isfinite(half).all():
                raise BadInput(f"{source}: {key} does not fit float16; ship it as trained")
            tensor = half
        halved[key] = tensor.contiguous()
    save_file(halved, str(target), metadata=metadata)
    target.chmod(0o644)  # safetensors writes owner-only; the package's files are world-readable


def policy_facts(
    name: str,
    run_name: str,
    run: Mapping[str, Any],
    *,
    base: StoredModel,
    adapter_sha256: str,
    evaluations: list[dict[str, Any]],
    commands: list[str],
) -> dict[str, Any]:
    """What ``policy.json`` records: the base and its hashes, the data, config and metrics."""
    metrics = run["metrics"]
    weights = base.path / "model.safetensors"
    return {
        "name": name,
        "run": run_name,
        "algo": run["config"].get("algo"),
        "writer_style": run["config"].get("writer_style"),
        "shipped_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "adapter_sha256": adapter_sha256,
        "base": {
            "store_name": BASE_LOCAL_MODEL,
            "hf_model": DEFAULT_BASE,
            "source": base.source,
            "gguf_file": GGUF_FILE,
            "gguf_sha256": file_sha256(bundled_gguf()),
            "weights_sha256": file_sha256(weights) if weights.is_file() else None,
        },
        "config": dict(run["config"]),
        "data": dict(run["data"]),
        "training": {
            key: metrics.get(key)
            for key in (
                "global_step",
                "wall_s",
                "step_time",
                "peak_memory_mb",
                "stopped_early",
                "train",
            )
        },
        "evaluations": evaluations,
        "commands": commands,
    }


def evaluation_summary(path: Path) -> dict[str, Any]:
    """The headline of an ``eval compare`` folder or an eval run, for the card."""
    folder = path if path.is_dir() else path.parent
    if (folder / "compare.json").is_file():
        data = json.loads((folder / "compare.json").read_text(encoding="utf-8"))
        rows = [r for r in data.get("rows", []) if r.get("metric") == "ndcg@10"]
        return {"kind": "compare", "a": data.get("a"), "b": data.get("b"), "ndcg@10": rows[0]}
    if (folder / "report.json").is_file():
        data = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        return {
            "kind": "report",
            "name": data.get("name"),
            "dataset": data.get("dataset"),
            "split": data.get("split"),
            "strategy": data.get("strategy"),
            "model": data.get("model"),
            "means": data.get("means"),
            "tool_calls": data.get("tool_calls"),
            "wall_s": data.get("wall_s"),
        }
    raise NotFound(f"{path}: neither an eval compare folder nor an eval run (no compare.json)")


def model_card(facts: Mapping[str, Any]) -> str:
    """``MODEL_CARD.md``: ``policy.json`` for people."""
    base, data, config = facts["base"], facts["data"], facts["config"]
    training = facts["training"]
    lines = [
        f"# {facts['name']}",
        "",
        f"A LoRA adapter ({facts['algo']}) on {base['hf_model']}, shipped with shopagent. "
        f"`shopagent model init` stores the untrained base as `{base['store_name']}` and this "
        "adapter merged into it as the default model.",
        "",
        "## Base model",
        "",
        f"- {base['hf_model']}, dequantized from `{base['gguf_file']}` ({base['source']})",
        f"- GGUF sha256: `{base['gguf_sha256']}`",
        f"- dequantized weights sha256: `{base['weights_sha256']}`",
        f"- adapter sha256: `{facts['adapter_sha256']}` (its LoRA factors stored as float16, "
        "merged into the float32 base)",
        "",
        "## Training data",
        "",
        f"- trajectories: `{data.get('trajectories')}`",
        f"- trajectories sha256: `{data.get('trajectories_sha256')}`",
        f"- examples: {data.get('examples')} (sha256 `{data.get('examples_sha256')}`), from "
        f"{data.get('groups')} groups of {data.get('samples')} scored calls",
        "",
        "## Config",
        "",
        "| setting | value |",
        "| --- | --- |",
        *(
            f"| {key} | `{value}` |"
            for key, value in sorted(config.items())
            if key not in ("versions", "base_model_dir")
        ),
        f"| library versions | `{config.get('versions')}` |",
        "",
        "## Training",
        "",
        f"- optimiser steps: {training.get('global_step')}"
        f"{' (stopped by its time limit)' if training.get('stopped_early') else ''}",
        f"- wall time: {training.get('wall_s')} s; step time: {training.get('step_time')}",
        f"- peak memory: {training.get('peak_memory_mb')} MB",
        "",
        "## Metrics",
        "",
    ]
    for item in facts["evaluations"]:
        if item["kind"] == "compare":
            row = item["ndcg@10"]
            lines.append(
                f"- NDCG@10 `{item['b']}` vs `{item['a']}`: {row['mean_b']:.4f} vs "
                f"{row['mean_a']:.4f}, delta {row['delta']:+.4f} (95% CI "
                f"[{row['ci_low']:+.4f}, {row['ci_high']:+.4f}]), "
                f"W/T/L {row['wins']}/{row['ties']}/{row['losses']}, "
                f"Wilcoxon p {row['wilcoxon_p']:.4g}, {row['queries']} queries"
            )
        else:
            means = item.get("means") or {}
            lines.append(
                f"- `{item['name']}` ({item['dataset']}/{item['split']}, {item['strategy']}): "
                f"NDCG@10 {means.get('ndcg@10', float('nan')):.4f}; "
                f"tool calls {item.get('tool_calls')}"
            )
    if not facts["evaluations"]:
        lines.append("- none recorded")
    lines += ["", "## Commands", "", "```"]
    lines += facts["commands"] or ["(not recorded)"]
    lines += ["```", ""]
    return "\n".join(lines)
