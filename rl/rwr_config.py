"""Reward-weighted SFT (RWR) on good rollouts (``rl.datasets.build_rwr_dataset``).

A sample's weight is ``exp(advantage / beta)`` capped at ``max_weight``: ``beta`` 1.0 on
standardised advantages gives the group's best sample several times the weight of an average
one without letting one sample dominate. Only samples above ``min_reward`` are imitated (the
default 0.0 keeps usable calls that found something relevant), so a group of failures never
becomes training data.

``chosen_margin`` trades the weights for one chosen sample per request (``build_rwr_dataset``):
the copy unless a change wins by that margin, so the policy learns *whether* to change the
request as well as how.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rl.base_config import RunConfig, setting


@dataclass(slots=True)
class RWRRunConfig(RunConfig):
    beta: float = setting(
        1.0, "Temperature of the weights exp(advantage / beta): lower favours the best more."
    )
    min_reward: float = setting(0.0, "Only samples with a reward above this are imitated.")
    max_weight: float = setting(4.0, "Cap on a sample's weight, so that no sample dominates.")
    chosen_margin: float | None = setting(
        None,
        "Filtered behaviour cloning instead of weights: one sample per request, the first "
        "(greedy reply; an enumerated collect's copy) unless another beats it by this much.",
    )

    algo = "rwr"

    def to_trl(self, output_dir: str) -> Any:
        from trl import SFTConfig

        return SFTConfig(**self.trainer_arguments(output_dir), completion_only_loss=True)
