"""The local model as a query writer: prompts in, reply texts out, batched in process.

``shopagent eval`` (policy, concepts, direct) hands its prompts to a ``LocalQueryWriter``; any
other callable of the ``agent.protocol.writer_prompts.QueryWriter`` shape works too (tests pass
a fake). Prompts offering different tools are generated in separate batches, since the tools
are part of each batch's chat template. The runtime is the chat's (``LLMSettings.runtime``):
CTranslate2 by default, so an evaluation measures the calls the chat makes, at its speed.

A prompt that offers one tool demands it, as the chat's writer does (OpenAI ``tool_choice``,
``agent.conversation.deps``): the call's opening is written for the model, which writes only
the arguments. Greedy, that is the call it would have written itself, in half the tokens; a
reply whose arguments do not parse is still counted invalid.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.protocol.chat_template import demanded_call_opening
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

            # one replica a core, each on one thread: the fastest batches (``Ct2Generator``)
            cores = max(1, len(os.sched_getaffinity(0)))
            self.generator: Any = Ct2Generator(model_dir, threads=1, inter_threads=cores)
        else:
            from agent.runtime.generation import LocalGenerator

            self.generator = LocalGenerator(model_dir, device=device)

    def __call__(self, prompts: Sequence[Prompt]) -> list[str]:
        replies: list[str] = [""] * len(prompts)
        by_tools: dict[tuple[str, ...], list[int]] = {}
        for position, prompt in enumerate(prompts):
            key = tuple(str(tool["function"]["name"]) for tool in prompt.tools)
            by_tools.setdefault(key, []).append(position)
        for names, positions in by_tools.items():
            tools = prompts[positions[0]].tools
            generations = self.generator.generate(
                [prompts[i].messages for i in positions],
                tools=tools,
                max_new_tokens=self.max_new_tokens,
                written_start=self.demanded_opening(names, tools),
            )
            for position, generation in zip(positions, generations, strict=True):
                replies[position] = generation.text
        return replies

    def demanded_opening(
        self, tool_names: tuple[str, ...], tools: Sequence[Mapping[str, Any]] = ()
    ) -> str:
        """The call opening written for the model when its prompt offers exactly one tool
        (``demanded_call_opening``, as the chat's server writes it, up to the tool's first
        text argument when ``tools`` holds its schema)."""
        demanded = tool_names[0] if len(tool_names) == 1 else None
        schema = tools[0] if demanded is not None and tools else None
        return demanded_call_opening(self.generator.tokenizer, demanded, schema)
