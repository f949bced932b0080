"""Online GRPO whose reward is the live search (the Rec-R1 setup).

Each step samples ``num_generations`` calls for each of ``prompts_per_step`` requests, runs
them against the index and scores them with ``rl.rewards`` (no rollouts are replayed: the
trajectory file only chooses which requests to train on). ``kl_beta`` is TRL's KL coefficient:
0 (TRL's default) skips the reference model; LoRA already keeps the policy near its base.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rl.base_config import RunConfig
from rl.rewards import NDCG_K
from tools.errors import BadInput


@dataclass(slots=True)
class GRPORunConfig(RunConfig):
    learning_rate: float = 2e-5
    num_generations: int = 4
    prompts_per_step: int = 2
    max_completion_length: int = 64
    temperature: float = 0.8
    top_p: float = 0.95
    kl_beta: float = 0.0
    loss_type: str = "dapo"
    #: Train only on requests whose collected samples scored differently.
    only_informative: bool = True
    k: int = NDCG_K

    algo = "grpo"

    def __post_init__(self) -> None:
        RunConfig.__post_init__(self)
        if self.num_generations < 2:
            raise BadInput("GRPO needs num_generations >= 2 (advantages are relative in a group)")
        if self.prompts_per_step < 1:
            raise BadInput("prompts_per_step must be at least 1")
        # One optimiser step sees whole groups: the batch is derived, not chosen.
        self.batch_size = self.num_generations * self.prompts_per_step

    def to_trl(self, output_dir: str) -> Any:
        from trl import GRPOConfig

        arguments = self.trainer_arguments(output_dir)
        del arguments["max_length"]  # GRPO bounds the completion only
        return GRPOConfig(
            **arguments,
            num_generations=self.num_generations,
            max_completion_length=self.max_completion_length,
            temperature=self.temperature,
            top_p=self.top_p,
            beta=self.kl_beta,
            loss_type=self.loss_type,
            log_completions=False,
        )
