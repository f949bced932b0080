"""Online GRPO without the groups that teach nothing: flat groups leave the loss.

TRL's ``GRPOTrainer`` gives a group whose samples all scored the same (every sample copied the
query: gain 0 each) a zero advantage, so no policy gradient, but its tokens still count in the
``dapo`` loss's normaliser (and carry the KL term), diluting the groups that do teach. Here
such groups are masked out of the loss right after scoring, the way TRL itself masks truncated
completions (``mask_truncated_completions``): their rows' ``completion_mask`` becomes 0 and the
batch's token count is recomputed. The share dropped is logged as ``flat_groups``.
"""

from __future__ import annotations

from typing import Any

#: Advantages this close to 0 across a whole group mean the group had no reward spread.
FLAT_TOLERANCE = 1e-6


def flat_group_rows(advantages: Any, num_generations: int) -> Any:
    """A boolean per row: True where the row's whole group has (near) zero advantages.

    Rows come in groups of ``num_generations`` consecutive samples of one prompt (TRL's
    ``RepeatSampler`` order), so a batch's rows reshape to ``(groups, num_generations)``.
    """
    if advantages.numel() % num_generations:
        raise ValueError(f"{advantages.numel()} rows do not form whole groups of {num_generations}")
    grouped = advantages.reshape(-1, num_generations).abs() <= FLAT_TOLERANCE
    return grouped.all(dim=1).repeat_interleave(num_generations)


def drop_flat_groups(output: dict[str, Any], num_generations: int, gather: Any) -> float:
    """Mask flat groups out of a scored batch in place; returns the share of rows dropped.

    ``gather`` sums a tensor over processes (``accelerator.gather``), as TRL computes
    ``num_items_in_batch``.
    """
    flat = flat_group_rows(output["advantages"], num_generations)
    if not bool(flat.any()):
        return 0.0
    keep = (~flat).unsqueeze(1).to(output["completion_mask"].dtype)
    output["completion_mask"] = output["completion_mask"] * keep
    loss_mask = output["completion_mask"]
    if output.get("tool_mask") is not None:
        output["tool_mask"] = output["tool_mask"] * keep
        loss_mask = loss_mask * output["tool_mask"]
    output["num_items_in_batch"] = gather(loss_mask.sum()).sum()
    return float(flat.float().mean())


def informative_grpo_trainer_class() -> type:
    """``GRPOTrainer`` that drops flat groups from each scored batch (imported lazily: TRL)."""
    from trl import GRPOTrainer

    class InformativeGRPOTrainer(GRPOTrainer):  # type: ignore[misc]
        def _generate_and_score_completions(self, inputs: Any) -> dict[str, Any]:
            output = super()._generate_and_score_completions(inputs)
            mode = "train" if self.model.training else "eval"
            groups = self.num_generations if mode == "train" else self.num_generations_eval
            share = drop_flat_groups(output, groups, self.accelerator.gather)
            self._metrics[mode]["flat_groups"].append(share)
            return output

    return InformativeGRPOTrainer
