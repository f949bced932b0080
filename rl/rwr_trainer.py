"""``shopagent train --algo rwr``: reward-weighted SFT with TRL's SFTTrainer and LoRA.

Weights are applied by replicating each example ``round(weight)`` times (a weight below 0.5
drops it) rather than by a weighted loss. Why: TRL 1.16's ``SFTTrainer`` computes its loss in
a fused LM-head path normalised by the token count of the whole accumulated batch, and its
collator drops unknown columns; a per-example weight would mean re-implementing both. With
shuffling, replication gives each example a gradient share proportional to its (rounded)
weight, the RWR objective, using TRL's loss untouched; the cost is weights rounded to whole
numbers, which at ``max_weight`` 4 is a coarse but faithful ordering of samples. The run
around it is ``rl.base_trainer``'s offline skeleton.
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset

from rl.base_trainer import OfflineAlgorithm, OfflineData, TrainedRun, prepare_offline, run_training
from rl.datasets import RolloutData, build_rwr_dataset
from rl.rwr_config import RWRRunConfig
from tools.settings.config import Settings


def replicate_by_weight(dataset: Dataset, *, seed: int = 0) -> Dataset:
    """Each row ``round(weight)`` times (half up), shuffled with ``seed``."""
    indices = [
        index for index, weight in enumerate(dataset["weight"]) for _ in range(int(weight + 0.5))
    ]
    return dataset.select(indices).shuffle(seed=seed).flatten_indices()


def rwr_dataset(data: RolloutData, config: RWRRunConfig) -> tuple[Dataset, Dataset]:
    """The weighted samples, and the replicated rows that are trained on."""
    weighted = build_rwr_dataset(
        data.groups,
        beta=config.beta,
        min_reward=config.min_reward,
        max_weight=config.max_weight,
        chosen_margin=config.chosen_margin,
    )
    return weighted, replicate_by_weight(weighted, seed=config.seed)


def rwr_data(data: RolloutData, config: RWRRunConfig) -> OfflineData:
    weighted, rows = rwr_dataset(data, config)
    facts = {
        "weighted_examples": len(weighted),
        "beta": config.beta,
        "min_reward": config.min_reward,
        "max_weight": config.max_weight,
    }
    return OfflineData(rows, facts)


RWR = OfflineAlgorithm(trainer="SFTTrainer", dataset=rwr_data)


def train_rwr(settings: Settings, trajectories: Path, config: RWRRunConfig) -> TrainedRun:
    run = prepare_offline(trajectories, config, RWR)
    return run_training(run.config, settings, **run.inputs())
