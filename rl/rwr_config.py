"""Reward-weighted SFT (RWR) on good rollouts (``rl.datasets.build_rwr_dataset``).

A sample's weight is ``exp(advantage / beta)`` capped at ``max_weight``: ``beta`` 1.0 on
standardised advantages gives the group's best sample several times the weight of an average
one without letting one sample dominate. Only samples above ``min_reward`` are imitated (the
default 0.0 keeps usable calls that found something relevant), so a group of failures never
becomes training data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rl.base_config import RunConfig


@dataclass(slots=True)
class RWRRunConfig(RunConfig):
    beta: float = 1.0
    min_reward: float = 0.0
    max_weight: float = 4.0

    algo = "rwr"

    def to_trl(self, output_dir: str) -> Any:
        from trl import SFTConfig

        return SFTConfig(**self.trainer_arguments(output_dir), completion_only_loss=True)
