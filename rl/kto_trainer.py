"""``shopagent train --algo kto``: TRL's KTOTrainer with LoRA on advantage-labelled samples.

KTO estimates its KL term from mismatched pairs inside each batch and therefore reads the data
in order; the rows are shuffled here (seeded) so a batch mixes requests instead of holding
one group's samples. The run around it is ``rl.base_trainer``'s offline skeleton.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from datasets import Dataset

from rl.base_trainer import OfflineAlgorithm, OfflineData, TrainedRun, prepare_offline, run_training
from rl.datasets import RolloutData, build_kto_dataset
from rl.datasets import read_rollouts as read_rollouts  # kto_dataset's input, for callers
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


def kto_data(data: RolloutData, config: KTORunConfig) -> OfflineData:
    """The labelled rows, and the config with the label weights they settle.

    The balancing weights depend on the data: they are settled here, so that the run's
    config.json records the weights the loss used, not "balance them".
    """
    dataset = kto_dataset(data, config)
    desirable = sum(dataset["label"]) if len(dataset) else 0
    undesirable = len(dataset) - desirable
    weights = config.label_weights(desirable, undesirable)
    settled = replace(config, desirable_weight=weights[0], undesirable_weight=weights[1])
    facts = {"threshold": config.threshold, "desirable": desirable, "undesirable": undesirable}
    return OfflineData(dataset, facts, settled)


def kto_trl_config(config: KTORunConfig, output_dir: str, rows: Any) -> Any:
    return config.to_trl(output_dir, labels=rows["label"])


KTO = OfflineAlgorithm(trainer="KTOTrainer", dataset=kto_data, trl_config=kto_trl_config)


def train_kto(settings: Settings, trajectories: Path, config: KTORunConfig) -> TrainedRun:
    run = prepare_offline(trajectories, config, KTO)
    return run_training(run.config, settings, **run.inputs())
