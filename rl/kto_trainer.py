"""``shopagent train --algo kto``: TRL's KTOTrainer with LoRA on advantage-labelled samples.

KTO estimates its KL term from mismatched pairs inside each batch and therefore reads the data
in order; the rows are shuffled here (seeded) so a batch mixes requests instead of holding
one group's samples.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from datasets import Dataset

from rl.base_trainer import TrainedRun, data_facts, run_training
from rl.datasets import RolloutData, build_kto_dataset, read_rollouts
from rl.kto_config import KTORunConfig
from tools.errors import BadInput
from tools.settings.config import Settings


def kto_dataset(data: RolloutData, config: KTORunConfig) -> Dataset:
    """Labelled samples, shuffled (seeded); refuses data with only one of the two labels."""
    dataset = build_kto_dataset(data.groups, threshold=config.threshold)
    dataset = dataset.shuffle(seed=config.seed).flatten_indices()
    desirable = sum(dataset["label"]) if len(dataset) else 0
    undesirable = len(dataset) - desirable
    if len(dataset) and (desirable == 0 or undesirable == 0):
        raise BadInput(
            f"kto: {desirable} desirable and {undesirable} undesirable samples; KTO needs both "
            "(lower --threshold or collect more samples per request)"
        )
    return dataset


def build_kto_trainer(
    model: Any, tokenizer: Any, train_dataset: Any, args: Any, peft_config: Any
) -> Any:
    from trl import KTOTrainer

    return KTOTrainer(
        model=model,
        args=args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
    )


def train_kto(settings: Settings, trajectories: Path, config: KTORunConfig) -> TrainedRun:
    data = read_rollouts(trajectories, model_id=config.rollout_model)
    dataset = kto_dataset(data, config)
    desirable = sum(dataset["label"]) if len(dataset) else 0
    # The balancing weights depend on the data: settle them now, so that the run's
    # config.json records the weights the loss used, not "balance them".
    weights = config.label_weights(desirable, len(dataset) - desirable)
    config = replace(config, desirable_weight=weights[0], undesirable_weight=weights[1])
    return run_training(
        config,
        settings,
        train_dataset=dataset,
        make_trainer=lambda model, tokenizer, rows, output_dir, peft: build_kto_trainer(
            model, tokenizer, rows, config.to_trl(output_dir, labels=rows["label"]), peft
        ),
        facts=data_facts(
            trajectories,
            data,
            dataset,
            threshold=config.threshold,
            desirable=desirable,
            undesirable=len(dataset) - desirable,
        ),
    )
