"""Online GRPO whose reward is the live search (the Rec-R1 setup).

Each step samples ``num_generations`` calls for each of ``prompts_per_step`` requests, runs
them against the index and scores them with ``rl.rewards`` (no rollouts are replayed: the
trajectory file only chooses which requests to train on). The defaults follow Rec-R1: groups
of 8 and a KL coefficient ``kl_beta`` of 0.001 (TRL's ``beta``; 0 skips the KL term), and the
reward is the ``gain`` over the raw search (``rl.rewards``). Mapping onto TRL 1.16's
``GRPOConfig``: ``num_generations``, ``max_completion_length``, ``temperature``, ``top_p``,
``beta``, ``loss_type``; ``per_device_train_batch_size`` = ``num_generations`` x
``prompts_per_step``, so every optimiser step holds whole groups. TRL gives a group whose
samples all score the same zero advantage (logged as ``frac_reward_zero_std``); such requests
are also left out of the dataset up front (``only_informative``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rl.base_config import RunConfig, setting
from rl.rewards import DEFAULT_REWARD_SHAPE, NDCG_K, REWARD_SHAPES
from tools.errors import BadInput


@dataclass(slots=True)
class GRPORunConfig(RunConfig):
    learning_rate: float = setting(
        2e-5, "Peak learning rate (below the offline algorithms': online updates compound)."
    )
    batch_size: int = setting(
        16, "Derived: num_generations x prompts_per_step (one step sees whole groups)."
    )
    num_generations: int = setting(
        8,
        "Calls sampled per request (TRL's num_generations); advantages are relative within "
        "this group. Rec-R1 and DeepRetrieval sample 8-16.",
    )
    prompts_per_step: int = setting(2, "Requests per optimiser step.")
    max_completion_length: int = setting(64, "Most tokens in a sampled call.")
    temperature: float = setting(0.8, "Sampling temperature of a group's calls.")
    top_p: float = setting(0.95, "Nucleus sampling of a group's calls.")
    kl_beta: float = setting(
        0.001,
        "TRL's KL coefficient (beta), Rec-R1's 0.001; with LoRA the reference is the base "
        "model with the adapter disabled (no second copy). 0 skips the KL term.",
    )
    loss_type: str = setting("dapo", "TRL's GRPO loss: dapo, grpo, dr_grpo, bnpo, ...")
    only_informative: bool = setting(
        True, "Train only on requests whose collected samples scored differently."
    )
    k: int = setting(NDCG_K, "Depth of the NDCG in the reward.")
    dev_queries: int = setting(
        0,
        "Dev requests the greedy policy is scored on during training (dev_ndcg@10, "
        "dev_gain@10 in the log history and curves.png); 0 turns the probe off.",
    )
    dev_every: int = setting(25, "Optimiser steps between two dev probes.")
    reward: str = setting(
        DEFAULT_REWARD_SHAPE,
        "gain: NDCG@k minus the raw search's NDCG@k for the same request (copying the query "
        "earns 0 + format); absolute: the earlier format + NDCG (rl.rewards).",
    )

    algo = "grpo"

    def __post_init__(self) -> None:
        RunConfig.__post_init__(self)
        if self.num_generations < 2:
            raise BadInput("GRPO needs num_generations >= 2 (advantages are relative in a group)")
        if self.prompts_per_step < 1:
            raise BadInput("prompts_per_step must be at least 1")
        if self.reward not in REWARD_SHAPES:
            raise BadInput(f"unknown reward {self.reward!r}; choose one of {list(REWARD_SHAPES)}")
        if self.kl_beta < 0:
            raise BadInput(f"kl_beta must be >= 0, got {self.kl_beta}")
        if self.dev_queries < 0 or self.dev_every < 1:
            raise BadInput("dev_queries must be >= 0 and dev_every >= 1")
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
