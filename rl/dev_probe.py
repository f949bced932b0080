"""Dev NDCG@10 while training: the policy, greedy, on a fixed sample of dev requests.

A learning curve that only shows the training reward cannot tell learning from overfitting to
the training requests, so every ``every`` optimiser steps the current policy writes one greedy
call for each of ``n`` dev requests (the prompt ``shopagent eval`` gives it, through
``agent.protocol.writer_prompts.strategy_prompt``), each call is searched through the one
tool-call path, and the means are appended to the trainer's log history as ``dev_ndcg@10``,
``dev_gain@10`` (over the raw search of the same requests) and ``dev_valid_rate`` at that
step; ``rl.curves`` draws them. It is the eval's measurement on fewer queries, not a different
one: the final ``shopagent eval run`` on the whole split remains the number to report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agent.protocol.tool_calls import ParseClass, ToolCallParse
from agent.protocol.tool_search import SearchBackends
from agent.protocol.writer_prompts import strategy_prompt
from rl.rewards import NDCG_K, RawBaseline, SearchFn, search_reward
from tools.catalog.judgments import Judgments

Message = Mapping[str, Any]


class Generated(Protocol):
    parsed: ToolCallParse


class Generator(Protocol):
    """``agent.runtime.generation.LocalGenerator`` (``from_loaded`` for a training policy)."""

    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = ...,
        max_new_tokens: int = ...,
        temperature: float = ...,
    ) -> Sequence[Generated]: ...


@dataclass(frozen=True, slots=True)
class DevProbe:
    """A fixed sample of dev requests with their prompts, judgments and raw NDCG."""

    conversations: tuple[tuple[Message, ...], ...]
    tools: tuple[Mapping[str, Any], ...]
    judged: tuple[Mapping[str, float], ...]
    raw_ndcg: tuple[float, ...]
    search_fn: SearchFn
    k: int = NDCG_K
    batch_size: int = 32
    max_new_tokens: int = 64

    def measure(self, generator: Generator) -> dict[str, float]:
        """Mean NDCG@k, gain over raw and valid-call rate of the greedy policy's calls."""
        ndcg_sum = gain_sum = 0.0
        valid = 0
        for start in range(0, len(self.conversations), self.batch_size):
            chunk = slice(start, start + self.batch_size)
            replies = generator.generate(
                self.conversations[chunk],
                tools=self.tools,
                max_new_tokens=self.max_new_tokens,
                temperature=0.0,
            )
            for reply, judged, raw in zip(
                replies, self.judged[chunk], self.raw_ndcg[chunk], strict=True
            ):
                scored = search_reward(reply.parsed, judged, self.search_fn, k=self.k, raw_ndcg=raw)
                ndcg_sum += scored.ndcg
                gain_sum += scored.ndcg - raw
                valid += scored.parse_class == ParseClass.VALID
        count = max(1, len(self.conversations))
        return {
            f"dev_ndcg@{self.k}": round(ndcg_sum / count, 6),
            f"dev_gain@{self.k}": round(gain_sum / count, 6),
            "dev_valid_rate": round(valid / count, 6),
        }


def build_dev_probe(
    judgments: Judgments,
    strategy: str,
    backends: SearchBackends,
    search_fn: SearchFn,
    *,
    k: int = NDCG_K,
) -> DevProbe:
    """Prompts, judgments and raw NDCG for every request of ``judgments`` (a dev sample)."""
    baseline = RawBaseline(backends, k=k)
    queries = list(judgments)
    prompts = [strategy_prompt(strategy, query.text, backends) for query in queries]
    gains = [judgments.gains(query.id) for query in queries]
    return DevProbe(
        conversations=tuple(tuple(p.messages) for p in prompts),
        tools=tuple(prompts[0].tools) if prompts else (),
        judged=tuple(gains),
        raw_ndcg=tuple(baseline(q.text, g) for q, g in zip(queries, gains, strict=True)),
        search_fn=search_fn,
        k=k,
    )


def dev_probe_callback(
    probe: DevProbe, every: int, make_generator: Callable[[Any, Any], Generator] | None = None
) -> Any:
    """A ``transformers.TrainerCallback`` measuring ``probe`` every ``every`` steps (and at 0).

    The policy is switched to eval mode and the tokenizer to left padding for the probe, and
    both are restored before training continues.
    """
    from transformers import TrainerCallback

    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    if make_generator is None:
        from agent.runtime.generation import LocalGenerator

        make_generator = LocalGenerator.from_loaded

    class DevProbeCallback(TrainerCallback):  # type: ignore[misc]
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._measure(state, kwargs)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step % every == 0:
                self._measure(state, kwargs)

        def _measure(self, state: Any, kwargs: dict[str, Any]) -> None:
            model, tokenizer = kwargs.get("model"), kwargs.get("processing_class")
            if model is None or tokenizer is None:
                return
            was_training = bool(getattr(model, "training", False))
            padding_side = getattr(tokenizer, "padding_side", "left")
            try:
                model.eval()
                tokenizer.padding_side = "left"
                metrics = probe.measure(make_generator(model, tokenizer))
            finally:
                tokenizer.padding_side = padding_side
                if was_training:
                    model.train()
            state.log_history.append({"step": state.global_step, **metrics})

    return DevProbeCallback()
