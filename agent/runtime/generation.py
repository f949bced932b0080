"""Batched in-process generation for rollouts: no server, no HTTP, the same chat template.

RL needs many replies fast and needs them produced exactly as the served model would: the
prompts are rendered by the model directory's own chat template (the one ``transformers serve``
uses), left-padded into one batch, and each reply is parsed with the tool-call parser.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from agent.protocol.chat_template import TURN_END
from agent.protocol.tool_calls import parse_tool_calls
from agent.protocol.tool_schemas import TOOL_SCHEMAS
from agent.runtime.rendering import Generation, Message, render_prompt
from tools.errors import NotFound


@dataclass(frozen=True, slots=True)
class BatchTiming:
    """Wall time of one ``generate`` call and the tokens it produced (for tokens/s)."""

    seconds: float
    completion_tokens: int


class LocalGenerator:
    """A model directory loaded once; ``generate`` turns conversations into parsed replies."""

    def __init__(self, model_dir: Path, *, device: str = "cpu", dtype: str = "auto") -> None:
        if not (Path(model_dir) / "config.json").is_file():
            raise NotFound(f"{model_dir}: not a model directory (no config.json)")
        self.model_dir = Path(model_dir)
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=dtype)
        self.model.to(self.device).eval()
        self.last_timing: BatchTiming | None = None

    @classmethod
    def from_loaded(cls, model: Any, tokenizer: Any) -> LocalGenerator:
        """A generator over a model already in memory (a policy mid-training), rendered and
        decoded exactly as from its directory. The caller owns the model's train/eval mode and
        the tokenizer's padding side (generation needs left padding)."""
        generator = cls.__new__(cls)
        generator.model_dir = Path(str(getattr(model, "name_or_path", "") or "."))
        generator.device = next(model.parameters()).device
        generator.tokenizer = tokenizer
        generator.model = model
        generator.last_timing = None
        return generator

    def render(
        self,
        conversation: Sequence[Message],
        tools: Sequence[Mapping[str, Any]] | None = TOOL_SCHEMAS,
        **template_kwargs: Any,
    ) -> str:
        """The exact prompt text the model sees (useful for logging rollouts)."""
        return render_prompt(self.tokenizer, conversation, tools, **template_kwargs)

    @torch.inference_mode()
    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = TOOL_SCHEMAS,
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        top_p: float = 1.0,
        seed: int | None = None,
        written_start: str = "",
        **template_kwargs: Any,
    ) -> list[Generation]:
        """One padded batch through ``model.generate``; greedy when ``temperature`` is 0.
        ``written_start`` as in ``Ct2Generator.generate``: the reply's opening, written for
        the model and part of the reply text."""
        if not conversations:
            return []
        prompts = [self.render(c, tools, **template_kwargs) + written_start for c in conversations]
        batch = self.tokenizer(
            prompts, return_tensors="pt", padding=True, add_special_tokens=False
        ).to(self.device)
        if seed is not None:
            torch.manual_seed(seed)
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": temperature, "top_p": top_p}
            if temperature > 0
            else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        )
        if not _ends_turn_in_one_token(self.tokenizer):
            sampling.update(stop_strings=[TURN_END], tokenizer=self.tokenizer)
        started = time.perf_counter()
        output = self.model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            **sampling,
        )
        seconds = time.perf_counter() - started
        prompt_width = batch["input_ids"].shape[1]
        stops = _stop_ids(self.tokenizer, self.model)
        results: list[Generation] = []
        for row, mask in zip(output, batch["attention_mask"], strict=True):
            completion = _until_stop(row[prompt_width:].tolist(), stops)
            text = self.tokenizer.decode(completion, skip_special_tokens=True)
            text = (written_start + text).split(TURN_END, 1)[0]
            results.append(
                Generation(
                    text=text,
                    parsed=parse_tool_calls(text, tools),
                    prompt_tokens=int(mask.sum()),
                    completion_ids=tuple(completion),
                )
            )
        self.last_timing = BatchTiming(seconds, sum(g.completion_tokens for g in results))
        return results


def _stop_ids(tokenizer: Any, model: Any) -> set[int]:
    """End-of-sequence ids, and the padding a finished row is filled with (never generated)."""
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    for token_id in (tokenizer.eos_token_id, tokenizer.pad_token_id):
        if token_id is not None:
            ids.add(token_id)
    return ids


def _ends_turn_in_one_token(tokenizer: Any) -> bool:
    """Whether the template's turn end is one token of this vocabulary (SmolLM2: its EOS)."""
    return len(tokenizer.encode(TURN_END, add_special_tokens=False)) == 1


def _until_stop(ids: list[int], stops: set[int]) -> list[int]:
    """The generated ids up to and including the first stop token (padding after it dropped)."""
    for index, token in enumerate(ids):
        if token in stops:
            return ids[: index + 1]
    return ids
