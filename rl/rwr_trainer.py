"""``shopagent train --algo rwr``: reward-weighted SFT with TRL's SFTTrainer and LoRA.

Weights are applied by replicating each example ``round(weight)`` times (a weight below 0.5
drops it) rather than by a weighted loss. Why: TRL 1.16's ``SFTTrainer`` computes its loss in
a fused LM-head path normalised by the token count of the whole accumulated batch, and its
collator drops unknown columns; a per-example weight would mean re-implementing both. With
shuffling, replication gives each example a gradient share proportional to its (rounded)
weight, the RWR objective, using TRL's loss untouched; the cost is weights rounded to whole
numbers, which at ``max_weight`` 4 is a coarse but faithful ordering of samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset

from rl.base_trainer import TrainedRun, data_facts, run_training
from rl.datasets import RolloutData, build_rwr_dataset, read_rollouts
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


def build_rwr_trainer(
    model: Any, tokenizer: Any, train_dataset: Any, args: Any, peft_config: Any
) -> Any:
    from trl import SFTTrainer

    return SFTTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
    )


def train_rwr(settings: Settings, trajectories: Path, config: RWRRunConfig) -> TrainedRun:
    data = read_rollouts(trajectories, model_id=config.rollout_model)
    weighted, dataset = rwr_dataset(data, config)
    return run_training(
        config,
        settings,
        train_dataset=dataset,
        make_trainer=lambda model, tokenizer, rows, output_dir, peft: build_rwr_trainer(
            model, tokenizer, rows, config.to_trl(output_dir), peft
        ),
        facts=data_facts(
            trajectories,
            data,
            dataset,
            weighted_examples=len(weighted),
            beta=config.beta,
            min_reward=config.min_reward,
            max_weight=config.max_weight,
        ),
    )
