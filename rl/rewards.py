"""Rec-R1 rewards for one written search: a format part plus NDCG against the judgments.

The shape follows Rec-R1 (the search system's own metric is the reward, the policy never sees
the catalog), with the format part tuned for a 135M model that often writes no call at all:

- ``invalid`` reply (no usable tool call): ``FORMAT_INVALID`` = -1.0, and nothing is searched.
  A clear penalty, below anything a usable call can score, so every comparison inside a group
  first teaches the format.
- a usable call whose search finds nothing relevant (NDCG 0, or arguments the backend refuses):
  0.0 in total, whatever the format. A perfectly formatted useless query earns nothing.
- otherwise ``format + ndcg``: ``FORMAT_VALID`` = 0.1 for exactly the taught format,
  ``FORMAT_REPAIRED`` = 0.0 for a call the parser had to fix. The small bonus breaks ties
  towards the format the server parses natively; it is small next to NDCG (0..1) so it never
  outweighs finding the right products.

NDCG is ``NDCG_K`` = 10 deep with the dataset's gains (the number ``shopagent eval`` reports).
Everything here is a plain callable: ``search_reward`` takes the search as a function, and
``SearchRewardFunc`` is the same reward in the form TRL's ``GRPOTrainer`` calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from agent.protocol.tool_calls import ParseClass, ParsedToolCall, ToolCallParse, parse_tool_calls
from agent.protocol.tool_search import SearchBackends, search_tool_call
from tools.errors import BadInput
from tools.metrics import NDCG_K, ndcg
from tools.search.results import SearchResults

FORMAT_VALID = 0.1
FORMAT_REPAIRED = 0.0
FORMAT_INVALID = -1.0

_FORMAT = {
    ParseClass.VALID: FORMAT_VALID,
    ParseClass.REPAIRED: FORMAT_REPAIRED,
    ParseClass.INVALID: FORMAT_INVALID,
}

#: A usable tool call in, the ranked product ids it retrieves out. Raises ``BadInput`` for
#: arguments the search refuses; a backend that is down
#: raises ``SearchError``, which is not the policy's fault and is never turned into a reward.
SearchFn = Callable[[ParsedToolCall], Sequence[str]]


@dataclass(frozen=True, slots=True)
class RewardBreakdown:
    """The parts of one reward; ``total`` is what the trainers optimise."""

    format: float
    ndcg: float
    total: float
    parse_class: str
    #: Why a usable call searched nothing (arguments the backend refused), else None.
    error: str | None = None

    def components(self) -> dict[str, float]:
        return {"format": self.format, f"ndcg@{NDCG_K}": self.ndcg}


def format_reward(parse_class: ParseClass | str) -> float:
    """The format part alone: valid 0.1, repaired 0.0, invalid -1.0."""
    try:
        return _FORMAT[ParseClass(parse_class)]
    except ValueError:
        raise ValueError(
            f"unknown parse class {parse_class!r}; expected valid, repaired or invalid"
        ) from None


def combine(parse_class: ParseClass | str, ndcg_value: float) -> RewardBreakdown:
    """The Rec-R1 total for a parse class and the NDCG its search reached."""
    fmt = format_reward(parse_class)
    klass = ParseClass(parse_class).value
    if klass == ParseClass.INVALID:
        return RewardBreakdown(fmt, 0.0, fmt, klass)
    if ndcg_value <= 0.0:
        return RewardBreakdown(fmt, 0.0, 0.0, klass)
    return RewardBreakdown(fmt, ndcg_value, round(fmt + ndcg_value, 6), klass)


def search_reward(
    tool_call: ToolCallParse,
    judged_gains: Mapping[str, float],
    search_fn: SearchFn,
    *,
    k: int = NDCG_K,
) -> RewardBreakdown:
    """Score one parsed reply: search its first usable call and compare with the judgments."""
    if tool_call.parse_class == ParseClass.INVALID or not tool_call.calls:
        return combine(ParseClass.INVALID, 0.0)
    try:
        ranking = search_fn(tool_call.calls[0])
    except BadInput as error:
        refused = combine(tool_call.parse_class, 0.0)
        return RewardBreakdown(
            refused.format, 0.0, 0.0, refused.parse_class, error=_one_line(error)
        )
    return combine(tool_call.parse_class, ndcg(list(ranking), judged_gains, k))


# -- the live search behind a tool call --------------------------------------------------------


class LiveSearch:
    """Runs a parsed call through the one tool-call path and keeps the last results.

    The call is read and searched by ``agent.protocol.tool_search``, exactly as the chat's
    tools and ``shopagent eval`` run it; arguments it refuses raise ``BadInput`` (the reply
    scores as a useless call).
    """

    def __init__(self, backends: SearchBackends, *, size: int = NDCG_K) -> None:
        self.backends = backends
        self.size = size
        self.last: SearchResults | None = None

    def __call__(self, call: ParsedToolCall) -> list[str]:
        self.last = None
        self.last = self.results(call)
        return self.last.ids

    def results(self, call: ParsedToolCall) -> SearchResults:
        return search_tool_call(call.name, call.arguments, self.backends, size=self.size)[1]


# -- the reward as TRL's GRPOTrainer calls it ---------------------------------------------------


class SearchRewardFunc:
    """``reward_funcs=[SearchRewardFunc(...)]``: parses each completion, runs it, scores it.

    The judged gains travel with each prompt in the dataset column ``judged`` (a JSON object
    ``{product_id: gain}``), the tool schemas in ``tools`` (a JSON list), so any batch can be
    scored without a lookup. The components are logged as ``rewards/format``,
    ``rewards/ndcg@10`` and ``rewards/valid_rate``.
    """

    __name__ = "search_reward"

    def __init__(self, search_fn: SearchFn, *, k: int = NDCG_K) -> None:
        self.search_fn = search_fn
        self.k = k

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        judged: Sequence[str],
        tools: Sequence[str] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **_: Any,
    ) -> list[float]:
        breakdowns = []
        for index, completion in enumerate(completions):
            schemas = _json_list(tools[index]) if tools is not None else None
            parsed = parse_tool_calls(completion_text(completion), schemas)
            breakdowns.append(
                search_reward(parsed, _json_gains(judged[index]), self.search_fn, k=self.k)
            )
        if log_metric is not None and breakdowns:
            count = len(breakdowns)
            log_metric("rewards/format", sum(b.format for b in breakdowns) / count)
            log_metric(f"rewards/ndcg@{self.k}", sum(b.ndcg for b in breakdowns) / count)
            valid = sum(b.parse_class == ParseClass.VALID for b in breakdowns)
            log_metric("rewards/valid_rate", valid / count)
        return [b.total for b in breakdowns]


def completion_text(completion: Any) -> str:
    """A TRL completion as text: a plain string, or the content of conversational messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence):
        return "".join(str(m.get("content") or "") for m in completion if isinstance(m, Mapping))
    raise TypeError(f"unexpected completion type {type(completion).__name__}")


@lru_cache(maxsize=4096)
def _json_gains(text: str) -> dict[str, float]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError("the judged column must hold a JSON object {product_id: gain}")
    return {str(pid): float(gain) for pid, gain in value.items()}


@lru_cache(maxsize=64)
def _json_list_cached(text: str) -> tuple[Any, ...]:
    value = json.loads(text)
    if not isinstance(value, list):
        raise ValueError("the tools column must hold a JSON list of tool schemas")
    return tuple(value)


def _json_list(text: str) -> list[Any]:
    return list(_json_list_cached(text))


def _one_line(error: BaseException) -> str:
    return (" ".join(str(error).split()) or type(error).__name__)[:300]
