"""``shopagent train --algo dpo``: TRL's DPOTrainer with LoRA on rollout preference pairs.

The reference policy is the base model itself (the adapter switched off), so DPO costs one
model in memory, not two.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset

from rl.base_trainer import TrainedRun, data_facts, run_training
from rl.datasets import RolloutData, build_dpo_dataset, read_rollouts
from rl.dpo_config import DPORunConfig
from tools.settings.config import Settings


def dpo_dataset(data: RolloutData, config: DPORunConfig) -> Dataset:
    return build_dpo_dataset(data.groups, margin=config.margin, chosen_margin=config.chosen_margin)


def build_dpo_trainer(
    model: Any, tokenizer: Any, train_dataset: Any, args: Any, peft_config: Any
) -> Any:
    from trl import DPOTrainer

    return DPOTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
    )


def train_dpo(settings: Settings, trajectories: Path, config: DPORunConfig) -> TrainedRun:
    data = read_rollouts(trajectories, model_id=config.rollout_model)
    dataset = dpo_dataset(data, config)
    return run_training(
        config,
        settings,
        train_dataset=dataset,
        make_trainer=lambda model, tokenizer, rows, output_dir, peft: build_dpo_trainer(
            model, tokenizer, rows, config.to_trl(output_dir), peft
        ),
        facts=data_facts(
            trajectories, data, dataset, margin=config.margin, chosen_margin=config.chosen_margin
        ),
    )
