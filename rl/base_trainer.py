"""The run around any TRL trainer: load the policy, train with LoRA, measure, merge, register.

``run_training`` is the same for every algorithm; each ``rl/<algo>_trainer.py`` only builds
its dataset and its TRL trainer (``trl_trainer``). The offline algorithms (``dpo``, ``kto``,
``rwr``) share more: read the rollouts, build the rows, map the config onto TRL's
(``prepare_offline``), so their files hold only an ``OfflineAlgorithm``: the dataset builder,
the TRL trainer class and, where it differs, the TRL config mapping. GRPO is online (its
reward runs the live search while it trains) and builds its own trainer.

Measured for every run (``metrics.json``): TRL's log history and train metrics, the wall time
of every optimiser step (``StepTimer``) and the peak memory of the process (resident set on
CPU, allocated CUDA memory on a GPU).
"""

from __future__ import annotations

import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import import_module
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from agent.runtime.model_store import StoredModel, resolve_model_dir
from agent.runtime.torch_threads import torch_threads
from rl.base_config import RunConfig
from rl.checkpoints import (
    CONFIG_FILE,
    DATA_FILE,
    METRICS_FILE,
    RunDirectory,
    default_run_name,
    file_sha256,
    library_versions,
    merge_and_register,
    rows_sha256,
)
from rl.curves import plot_learning_curves
from rl.datasets import RolloutData, read_rollouts
from tools.errors import BadInput
from tools.settings.config import Settings

#: ``make_trainer(model, tokenizer, train_dataset, output_dir, peft_config)`` -> a TRL trainer.
TrainerFactory = Callable[[Any, Any, Any, str, Any], Any]


@dataclass(frozen=True, slots=True)
class TrainedRun:
    name: str
    run_dir: Path
    model: StoredModel | None
    metrics: dict[str, Any]


class StepTimer(TrainerCallback):
    """Wall time of each optimiser step (forward, backward, optimiser; generation in GRPO)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._started: float | None = None

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._started is not None:
            self.seconds.append(time.perf_counter() - self._started)
            self._started = None

    def summary(self) -> dict[str, float]:
        """Step time statistics; the first step (warm-up, lazy init) is reported apart."""
        if not self.seconds:
            return {"steps": 0}
        steady = self.seconds[1:] or self.seconds
        return {
            "steps": len(self.seconds),
            "first_s": round(self.seconds[0], 4),
            "mean_s": round(statistics.fmean(steady), 4),
            "median_s": round(statistics.median(steady), 4),
            "max_s": round(max(steady), 4),
        }


class TimeLimit(TrainerCallback):
    """Ends training after the step that passes ``seconds`` (``RunConfig.time_limit_s``).

    The run is then saved, merged and registered like a finished one; ``stopped_early`` says
    so in ``metrics.json``. The linear schedule is not shortened: the last steps ran at the
    learning rate they had, which the log history shows.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.stopped_early = False
        self._started = time.perf_counter()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if time.perf_counter() - self._started >= self.seconds:
            control.should_training_stop = True
            self.stopped_early = state.global_step < state.max_steps


def peak_memory_mb(device: str) -> float:
    """Peak resident memory of this process (CPU) or peak allocated CUDA memory."""
    if device == "cuda":
        import torch

        return torch.cuda.max_memory_allocated() / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def load_policy(model_dir: Path, device: str) -> tuple[Any, Any]:
    """The model in fp32 on ``device`` and its tokenizer (pad token = eos when it has none)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    return model.to(device), tokenizer


def data_facts(trajectories: Path, data: RolloutData, dataset: Any, **more: Any) -> dict[str, Any]:
    """What ``data.json`` records: where the data came from, its hashes and its size."""
    return {
        "trajectories": str(trajectories.resolve()),
        "trajectories_sha256": file_sha256(trajectories),
        "rollout_records": data.records,
        "rollout_records_skipped": data.skipped,
        "damaged_lines": data.damaged,
        "groups": len(data.groups),
        "samples": data.samples,
        "examples": len(dataset),
        "examples_sha256": rows_sha256(dataset),
        **more,
    }


def config_record(
    config: RunConfig, *, run_name: str, base_model_dir: Path, device: str
) -> dict[str, Any]:
    """What a run's ``config.json`` holds: every field as this run resolved it, and provenance.

    The run name and device are the resolved ones (not "unset" and "auto"). The provenance keys
    (``algo``, ``writer_style``, ``base_model_dir``, ``versions``, ``created_at``) are skipped by
    ``rl.config_builder``, so the file is a valid ``shopagent train --config``: a run can be
    repeated from its folder.
    """
    return {
        **config.to_dict(),
        "run_name": run_name,
        "writer_style": config.writer_style,
        "base_model_dir": str(base_model_dir),
        "device": device,
        "versions": library_versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def run_training(
    config: RunConfig,
    settings: Settings,
    *,
    train_dataset: Any,
    make_trainer: TrainerFactory,
    facts: dict[str, Any],
) -> TrainedRun:
    """Train ``config.base_model`` with LoRA on ``train_dataset`` and publish the run."""
    if len(train_dataset) == 0:
        raise BadInput(f"{config.algo}: no training examples (see data.json facts: {facts})")
    device = config.resolved_device()
    name = config.run_name or default_run_name(config.algo)
    base_dir = resolve_model_dir(settings, config.base_model)
    run = RunDirectory(settings, name, overwrite=config.overwrite)
    try:
        record = config_record(config, run_name=name, base_model_dir=base_dir, device=device)
        run.write_json(CONFIG_FILE, record)
        run.write_json(DATA_FILE, facts)
        started = time.perf_counter()
        timer = StepTimer()
        stored = None
        with torch_threads(config.threads):
            model, tokenizer = load_policy(base_dir, device)
            trainer = make_trainer(
                model, tokenizer, train_dataset, str(run.path / "trainer"), config.lora_config()
            )
            trainer.add_callback(timer)
            limit = TimeLimit(config.time_limit_s) if config.time_limit_s else None
            if limit is not None:
                trainer.add_callback(limit)
            result = trainer.train()
            train_s = time.perf_counter() - started
            trainer.model.save_pretrained(run.adapter_dir)
            if config.register:
                stored = merge_and_register(
                    settings,
                    trainer.model,
                    tokenizer,
                    name,
                    base=config.base_model,
                    workdir=run.path,
                    overwrite=config.overwrite,
                    writer_style=config.writer_style,
                )
        metrics = {
            "train": dict(result.metrics),
            "log_history": list(trainer.state.log_history),
            "global_step": trainer.state.global_step,
            "step_time": timer.summary(),
            "peak_memory_mb": round(peak_memory_mb(device), 1),
            "wall_s": round(train_s, 3),
            "stopped_early": bool(limit is not None and limit.stopped_early),
            "model": stored.name if stored else None,
            "model_dir": str(stored.path) if stored else None,
        }
        run.write_json(METRICS_FILE, metrics)
        plot_learning_curves(metrics["log_history"], run.path, title=f"{config.algo} {name}")
        shutil.rmtree(run.path / "trainer", ignore_errors=True)
        final = run.finish()
    except BaseException:
        run.discard()
        raise
    return TrainedRun(name, final, stored, metrics)


def trl_trainer(
    trainer: str | type,
    model: Any,
    tokenizer: Any,
    train_dataset: Any,
    args: Any,
    peft_config: Any,
    **more: Any,
) -> Any:
    """A TRL trainer (a class, or its name in ``trl``) on the policy, its rows and the LoRA.

    ``more`` holds what one trainer alone takes (GRPO's ``reward_funcs``).
    """
    trainer_class = getattr(import_module("trl"), trainer) if isinstance(trainer, str) else trainer
    return trainer_class(
        model=model,
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        **more,
    )


# -- the offline algorithms: rollouts -> rows -> TRL -----------------------------------------


@dataclass(frozen=True, slots=True)
class OfflineData:
    """What an offline algorithm makes of the rollouts."""

    #: The rows TRL trains on.
    rows: Any
    #: The algorithm's own ``data.json`` facts, after the ones ``data_facts`` records for all.
    facts: dict[str, Any] = field(default_factory=dict)
    #: The config as the data settles it (KTO's label weights, so that ``config.json`` records
    #: the weights the loss used); None: the config as given.
    config: RunConfig | None = None


def _to_trl(config: Any, output_dir: str, rows: Any) -> Any:
    return config.to_trl(output_dir)


@dataclass(frozen=True, slots=True)
class OfflineAlgorithm:
    """What one offline algorithm adds to the skeleton (``rl/<algo>_trainer.py`` holds one)."""

    #: The TRL trainer class, by its name in ``trl`` (imported when the run starts).
    trainer: str
    #: ``dataset(rollouts, config)``: the rows trained on and their facts.
    dataset: Callable[[RolloutData, Any], OfflineData]
    #: ``trl_config(config, output_dir, rows)``: TRL's config (default: ``config.to_trl``).
    trl_config: Callable[[Any, str, Any], Any] = _to_trl


@dataclass(frozen=True, slots=True)
class PreparedRun:
    """An offline run ready to train: ``run_training(run.config, settings, **run.inputs())``."""

    config: RunConfig
    train_dataset: Any
    make_trainer: TrainerFactory
    facts: dict[str, Any]

    def inputs(self) -> dict[str, Any]:
        """``run_training``'s keyword arguments."""
        return {
            "train_dataset": self.train_dataset,
            "make_trainer": self.make_trainer,
            "facts": self.facts,
        }


def prepare_offline(
    trajectories: Path, config: RunConfig, algorithm: OfflineAlgorithm
) -> PreparedRun:
    """Read the rollouts (of ``config.rollout_model``), build the rows, map the config to TRL's."""
    data = read_rollouts(trajectories, model_id=config.rollout_model)
    built = algorithm.dataset(data, config)
    settled = built.config if built.config is not None else config

    def make_trainer(model: Any, tokenizer: Any, rows: Any, output_dir: str, peft: Any) -> Any:
        args = algorithm.trl_config(settled, output_dir, rows)
        return trl_trainer(algorithm.trainer, model, tokenizer, rows, args, peft)

    facts = data_facts(trajectories, data, built.rows, **built.facts)
    return PreparedRun(settled, built.rows, make_trainer, facts)
