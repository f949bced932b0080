"""DPO on in-group best-vs-worst pairs (``rl.datasets.build_dpo_dataset``).

``beta`` 0.1 is TRL's default (how far the policy may move from the base). The learning rate
is LoRA's usual 5e-5 rather than TRL's 1e-6 full-finetuning default: with r=16 adapters on a
135M model, 1e-6 leaves the policy where it was after a few hundred steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rl.base_config import RunConfig, setting


@dataclass(slots=True)
class DPORunConfig(RunConfig):
    beta: float = setting(0.1, "How far the policy may move from the base (TRL's default).")
    margin: float = setting(
        0.1, "Least reward difference between the chosen and the rejected sample of a pair."
    )
    loss_type: str = setting("sigmoid", "TRL's DPO loss: sigmoid, hinge, ipo, robust, ...")
    chosen_margin: float = setting(
        0.0,
        "The first sample of a group (greedy reply; the copy of an enumerated collect) stays "
        "the chosen one unless another beats it by this much (0: the best always).",
    )

    algo = "dpo"

    def to_trl(self, output_dir: str) -> Any:
        from trl import DPOConfig

        return DPOConfig(
            **self.trainer_arguments(output_dir), beta=self.beta, loss_type=[self.loss_type]
        )
