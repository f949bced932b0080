"""Offline and online RL for the query-writing policy (Rec-R1 style), built on TRL and PEFT.

``rl.rollouts`` collects scored candidate calls into a trajectory log; ``rl.datasets`` turns
them into TRL datasets; ``rl/<algo>_config.py`` + ``rl/<algo>_trainer.py`` train a LoRA on
them (``dpo``, ``kto``, ``rwr``) or online against the live search (``grpo``);
``rl.checkpoints`` writes the run and registers the merged model. ``train`` is the one entry
point the CLI needs. Imports are lazy: ``import rl`` loads neither torch nor TRL.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools.errors import BadInput

if TYPE_CHECKING:
    from rl.base_config import RunConfig
    from rl.base_trainer import TrainedRun
    from tools.settings.config import Settings

ALGORITHMS = ("dpo", "kto", "rwr", "grpo", "sft")
_CONFIGS = {
    "dpo": "DPORunConfig",
    "kto": "KTORunConfig",
    "rwr": "RWRRunConfig",
    "grpo": "GRPORunConfig",
    "sft": "SFTRunConfig",
}


def config_class(algo: str) -> type[RunConfig]:
    """The run config of an algorithm, e.g. ``config_class("dpo")(max_steps=10)``."""
    _check(algo)
    return getattr(import_module(f"rl.{algo}_config"), _CONFIGS[algo])


def train(
    settings: Settings,
    algo: str,
    trajectories: Path,
    config: RunConfig | None = None,
    **kwargs: Any,
) -> TrainedRun:
    """``shopagent train --algo ALGO --from-trajectories FILE``; ``kwargs`` go to the trainer."""
    _check(algo)
    config = config if config is not None else config_class(algo)()
    if config.algo != algo:
        raise BadInput(f"a {config.algo} config cannot train {algo}")
    trainer = getattr(import_module(f"rl.{algo}_trainer"), f"train_{algo}")
    return trainer(settings, Path(trajectories), config, **kwargs)


def _check(algo: str) -> None:
    if algo not in ALGORITHMS:
        raise BadInput(f"unknown algorithm {algo!r}; choose one of {list(ALGORITHMS)}")
