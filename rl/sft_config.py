"""Supervised warm start of the conversation writer on training sessions (``rl.sft_trainer``).

The writer reads a conversation (``agent.protocol.writer_prompts``, the ``conversation``
prompt, as the chat shows it at a session's last turn) and learns to write the judged query
the session stands for. Why a supervised start before any reward: an untrained 135M model
copies greetings and filler from a chatty message into the search (measured on the
hand-written sessions: below the graph's own words); the judged query is a target that is
known for every training session, so the model first learns the task, and the RL loop then
only has to learn where the judged query is not the best search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rl.base_config import RunConfig, setting


@dataclass(slots=True)
class SFTRunConfig(RunConfig):
    dataset: str = setting(
        "homedepot",
        "The dataset the sessions stand for: its judgments name the targets, and its indexes "
        "are what the chat searched at the earlier turns of each session.",
    )
    session_batch: int = setting(
        16, "Sessions run through the chat graph at once while the prompts are built."
    )

    algo = "sft"
    writer_style = "conversation"

    def __post_init__(self) -> None:
        RunConfig.__post_init__(self)
        if self.session_batch < 1:
            from tools.errors import BadInput

            raise BadInput(f"session_batch must be at least 1, got {self.session_batch}")

    def to_trl(self, output_dir: str) -> Any:
        from trl import SFTConfig

        return SFTConfig(**self.trainer_arguments(output_dir), completion_only_loss=True)
