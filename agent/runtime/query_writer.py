"""The local model as a query writer: prompts in, reply texts out, batched in process.

``shopagent eval`` (policy, concepts, direct) hands its prompts to a ``LocalQueryWriter``; any
other callable of the ``agent.protocol.writer_prompts.QueryWriter`` shape works too (tests pass
a fake). Prompts offering different tools are generated in separate batches, since the tools
are part of each batch's chat template. The runtime is the chat's (``LLMSettings.runtime``):
CTranslate2 by default, so an evaluation measures the calls the chat makes, at its speed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.protocol.writer_prompts import Prompt


class LocalQueryWriter:
    """The local model, in process, batched (``agent.runtime.generation.LocalGenerator``)."""

    def __init__(
        self,
        model_dir: Path,
        *,
        max_new_tokens: int = 96,
        device: str = "cpu",
        runtime: str = "ctranslate2",
    ) -> None:
        from agent.runtime.model_server import choose_runtime

        self.name = model_dir.name
        self.max_new_tokens = max_new_tokens
        self.runtime = choose_runtime(model_dir, runtime, device)
        if self.runtime == "ctranslate2":
            from agent.runtime.ct2_model import Ct2Generator

            self.generator: Any = Ct2Generator(model_dir)
        else:
            from agent.runtime.generation import LocalGenerator

            self.generator = LocalGenerator(model_dir, device=device)

    def __call__(self, prompts: Sequence[Prompt]) -> list[str]:
        replies: list[str] = [""] * len(prompts)
        by_tools: dict[tuple[str, ...], list[int]] = {}
        for position, prompt in enumerate(prompts):
            key = tuple(str(tool["function"]["name"]) for tool in prompt.tools)
            by_tools.setdefault(key, []).append(position)
        for positions in by_tools.values():
            generations = self.generator.generate(
                [prompts[i].messages for i in positions],
                tools=prompts[positions[0]].tools,
                max_new_tokens=self.max_new_tokens,
            )
            for position, generation in zip(positions, generations, strict=True):
                replies[position] = generation.text
        return replies
