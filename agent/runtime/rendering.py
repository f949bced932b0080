"""What every local runtime shares: the prompt text a conversation renders to, and a reply.

Why apart from either runtime: ``transformers`` (``agent.runtime.generation``, the one RL trains
through) and CTranslate2 (``agent.runtime.ct2_model``, the one the chat and the evals serve)
must render the same conversation to the same text with the model directory's own chat
template, or a policy trained on one would meet other prompts on the other. Nothing here
imports torch, so the CTranslate2 server starts without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.protocol.tool_calls import ToolCallParse

Message = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Generation:
    text: str
    parsed: ToolCallParse
    prompt_tokens: int
    completion_ids: tuple[int, ...]

    @property
    def completion_tokens(self) -> int:
        return len(self.completion_ids)


def render_prompt(
    tokenizer: Any,
    conversation: Sequence[Message],
    tools: Sequence[Mapping[str, Any]] | None,
    *,
    generation_prompt: bool = True,
    **template_kwargs: Any,
) -> str:
    """The exact prompt text the model sees: the directory's chat template, tools included,
    ending where the assistant's turn starts (without ``generation_prompt``: where the last
    message ends)."""
    return tokenizer.apply_chat_template(
        [dict(m) for m in conversation],
        tools=[dict(t) for t in tools] if tools else None,
        add_generation_prompt=generation_prompt,
        tokenize=False,
        **template_kwargs,
    )
