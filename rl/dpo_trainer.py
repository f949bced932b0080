"""``shopagent train --algo dpo``: TRL's DPOTrainer with LoRA on rollout preference pairs.

The reference policy is the base model itself (the adapter switched off), so DPO costs one
model in memory, not two. The run around it is ``rl.base_trainer``'s offline skeleton.
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset

from rl.base_trainer import OfflineAlgorithm, OfflineData, TrainedRun, prepare_offline, run_training
from rl.datasets import RolloutData, build_dpo_dataset
from rl.dpo_config import DPORunConfig
from tools.settings.config import Settings


def dpo_dataset(data: RolloutData, config: DPORunConfig) -> Dataset:
    return build_dpo_dataset(data.groups, margin=config.margin, chosen_margin=config.chosen_margin)


def dpo_data(data: RolloutData, config: DPORunConfig) -> OfflineData:
    facts = {"margin": config.margin, "chosen_margin": config.chosen_margin}
    return OfflineData(dpo_dataset(data, config), facts)


DPO = OfflineAlgorithm(trainer="DPOTrainer", dataset=dpo_data)


def train_dpo(settings: Settings, trajectories: Path, config: DPORunConfig) -> TrainedRun:
    run = prepare_offline(trajectories, config, DPO)
    return run_training(run.config, settings, **run.inputs())
