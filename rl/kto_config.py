"""KTO on samples labelled by group-normalised advantage (``rl.datasets.build_kto_dataset``).

Desirable and undesirable samples are rarely balanced (a group has one clear winner and many
failures, or the reverse), so by default the rarer label is up-weighted until
``weight_D * n_D == weight_U * n_U``, the balance the KTO paper recommends (it allows up to
4:3; exact balance keeps the loss scale comparable between runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rl.base_config import RunConfig, setting
from tools.errors import BadInput


@dataclass(slots=True)
class KTORunConfig(RunConfig):
    beta: float = setting(0.1, "How far the policy may move from the base (TRL's default).")
    threshold: float = setting(
        0.5,
        "|advantage| from which a sample is labelled: desirable above +it, undesirable below -it.",
    )
    desirable_weight: float | None = setting(
        None,
        "Loss weight of desirable samples; set with undesirable_weight (default: the rarer "
        "label is up-weighted until both labels weigh the same).",
    )
    undesirable_weight: float | None = setting(
        None, "Loss weight of undesirable samples; set with desirable_weight."
    )

    algo = "kto"

    def __post_init__(self) -> None:
        RunConfig.__post_init__(self)
        if self.batch_size < 2:
            raise BadInput("KTO needs batch_size >= 2 (its KL estimate pairs samples in a batch)")

    def label_weights(self, desirable: int, undesirable: int) -> tuple[float, float]:
        if self.desirable_weight is not None and self.undesirable_weight is not None:
            return self.desirable_weight, self.undesirable_weight
        if desirable == 0 or undesirable == 0:
            return 1.0, 1.0
        if desirable < undesirable:
            return undesirable / desirable, 1.0
        return 1.0, desirable / undesirable

    def to_trl(self, output_dir: str, *, labels: Sequence[bool]) -> Any:
        """TRL's config; ``labels`` (the dataset's) set the balancing weights."""
        from trl import KTOConfig

        desirable = sum(1 for label in labels if label)
        desirable_weight, undesirable_weight = self.label_weights(
            desirable, len(labels) - desirable
        )
        return KTOConfig(
            **self.trainer_arguments(output_dir),
            beta=self.beta,
            desirable_weight=desirable_weight,
            undesirable_weight=undesirable_weight,
        )
