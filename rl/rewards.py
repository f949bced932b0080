"""Rec-R1 rewards for one written search: a format part plus NDCG (or its gain over raw).

The shape follows Rec-R1 (the search system's own metric is the reward, the policy never sees
the catalog), with the format part tuned for a 135M model that often writes no call at all.

Two shapes (``REWARD_SHAPES``; the run configs' ``reward`` field picks one):

``gain`` (the default): ``format + NDCG@10(policy's search) - NDCG@10(raw search)``, where the
raw search is the shopper's own words sent through the same tool-call path
(``search_products(query=<request text>)``, ``RawBaseline``).

- ``invalid`` reply: ``FORMAT_INVALID`` = -1.0 and nothing is searched, as below.
- a usable call: ``format + gain``, gain in [-1, 1]. Copying the shopper's words searches
  exactly the raw query, so it earns 0 (+ format); only a search that ranks the judged
  products higher than the raw one earns more, and one that loses them earns less. Arguments
  the backend refuses search nothing (NDCG 0, gain ``-raw``).
- why: trained on absolute NDCG, the policy learned to copy the query (copying is the best it
  ever samples); the gain makes "as good as raw" the zero point, so the reward reports
  improvement over BM25 directly (the number the product must move). Inside one group the raw
  NDCG is a constant, so group-relative methods (GRPO advantages, best-vs-worst DPO pairs)
  rank samples as by NDCG; the gain's value is the common zero point across requests (KTO's
  labels, RWR's ``min_reward``, the logged ``rewards/gain@10``). Groups whose samples all
  score the same carry no preference and are dropped from training (``rl.datasets``).

``absolute`` (the earlier Rec-R1 shape, kept selectable):

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
Everything here is a plain callable: ``search_reward`` takes the search as a function (and the
raw NDCG for the gain), and ``SearchRewardFunc`` is the same reward in the form TRL's
``GRPOTrainer`` calls.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from agent.protocol.tool_calls import ParseClass, ParsedToolCall, ToolCallParse, parse_tool_calls
from agent.protocol.tool_schemas import SEARCH_PRODUCTS
from agent.protocol.tool_search import SearchBackends, search_tool_call
from tools.errors import BadInput, one_line
from tools.metrics import NDCG_K, ndcg
from tools.search.results import SearchResults

FORMAT_VALID = 0.1
FORMAT_REPAIRED = 0.0
FORMAT_INVALID = -1.0
REWARD_SHAPES = ("gain", "absolute")
DEFAULT_REWARD_SHAPE = "gain"

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
    #: NDCG of the raw search of the same request (the ``gain`` shape's zero point), else None.
    raw_ndcg: float | None = None

    @property
    def gain(self) -> float | None:
        """NDCG over the raw search's (None for the absolute shape or an invalid reply)."""
        if self.raw_ndcg is None or self.parse_class == ParseClass.INVALID:
            return None
        return round(self.ndcg - self.raw_ndcg, 6)

    def components(self) -> dict[str, float]:
        parts = {"format": self.format, f"ndcg@{NDCG_K}": self.ndcg}
        if self.raw_ndcg is not None:
            parts[f"raw_ndcg@{NDCG_K}"] = self.raw_ndcg
            gain = self.gain
            if gain is not None:
                parts[f"gain@{NDCG_K}"] = gain
        return parts


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


def combine_gain(
    parse_class: ParseClass | str, ndcg_value: float, raw_ndcg: float
) -> RewardBreakdown:
    """The ``gain`` total: format + NDCG - raw NDCG for a usable call, the penalty otherwise."""
    fmt = format_reward(parse_class)
    klass = ParseClass(parse_class).value
    if klass == ParseClass.INVALID:
        return RewardBreakdown(fmt, 0.0, fmt, klass, raw_ndcg=raw_ndcg)
    total = round(fmt + ndcg_value - raw_ndcg, 6)
    return RewardBreakdown(fmt, ndcg_value, total, klass, raw_ndcg=raw_ndcg)


def search_reward(
    tool_call: ToolCallParse,
    judged_gains: Mapping[str, float],
    search_fn: SearchFn,
    *,
    k: int = NDCG_K,
    raw_ndcg: float | None = None,
) -> RewardBreakdown:
    """Score one parsed reply: search its first usable call and compare with the judgments.

    ``raw_ndcg`` given: the ``gain`` shape against it; None: the ``absolute`` shape.
    """

    def scored(parse_class: ParseClass | str, value: float) -> RewardBreakdown:
        if raw_ndcg is None:
            return combine(parse_class, value)
        return combine_gain(parse_class, value, raw_ndcg)

    if tool_call.parse_class == ParseClass.INVALID or not tool_call.calls:
        return scored(ParseClass.INVALID, 0.0)
    try:
        ranking = search_fn(tool_call.calls[0])
    except BadInput as error:
        refused = scored(tool_call.parse_class, 0.0)
        return replace(refused, error=one_line(error))
    return scored(tool_call.parse_class, ndcg(list(ranking), judged_gains, k))


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


class RawBaseline:
    """NDCG@k of the shopper's own words, searched through the one tool-call path.

    ``search_products(query=<request text>)`` is exactly what a policy that copies the query
    searches, so copying scores a gain of exactly 0. Cached per (text, judgments): a GRPO group
    and a collect group share one raw search.
    """

    def __init__(self, backends: SearchBackends, *, k: int = NDCG_K) -> None:
        self.backends = backends
        self.k = k
        self._cache: dict[tuple[str, tuple[tuple[str, float], ...]], float] = {}

    def __call__(self, query_text: str, judged_gains: Mapping[str, float]) -> float:
        key = (query_text, tuple(sorted(judged_gains.items())))
        if key not in self._cache:
            try:
                _, results = search_tool_call(
                    SEARCH_PRODUCTS, {"query": query_text}, self.backends, size=self.k
                )
                value = ndcg(results.ids, judged_gains, self.k)
            except BadInput:  # text with no word: the raw search finds nothing
                value = 0.0
            self._cache[key] = value
        return self._cache[key]


# -- the reward as TRL's GRPOTrainer calls it ---------------------------------------------------


class SearchRewardFunc:
    """``reward_funcs=[SearchRewardFunc(...)]``: parses each completion, runs it, scores it.

    The judged gains travel with each prompt in the dataset column ``judged`` (a JSON object
    ``{product_id: gain}``), the tool schemas in ``tools`` (a JSON list) and the shopper's
    words in ``query_text``, so any batch can be scored without a lookup. With a ``baseline``
    (``RawBaseline``) the reward is the ``gain`` shape, without one the ``absolute`` shape.
    The components are logged as ``rewards/format``, ``rewards/ndcg@10``,
    ``rewards/valid_rate`` and, for the gain, ``rewards/gain@10``.
    """

    __name__ = "search_reward"

    def __init__(
        self,
        search_fn: SearchFn,
        *,
        k: int = NDCG_K,
        baseline: Callable[[str, Mapping[str, float]], float] | None = None,
    ) -> None:
        self.search_fn = search_fn
        self.k = k
        self.baseline = baseline

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        judged: Sequence[str],
        tools: Sequence[str] | None = None,
        query_text: Sequence[str] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **_: Any,
    ) -> list[float]:
        if self.baseline is not None and query_text is None:
            raise ValueError("the gain reward needs the dataset column query_text")
        breakdowns = []
        for index, completion in enumerate(completions):
            schemas = _json_list(tools[index]) if tools is not None else None
            parsed = parse_tool_calls(completion_text(completion), schemas)
            gains = _json_gains(judged[index])
            raw = None
            if self.baseline is not None and query_text is not None:
                raw = self.baseline(query_text[index], gains)
            breakdowns.append(search_reward(parsed, gains, self.search_fn, k=self.k, raw_ndcg=raw))
        if log_metric is not None and breakdowns:
            count = len(breakdowns)
            log_metric("rewards/format", sum(b.format for b in breakdowns) / count)
            log_metric(f"rewards/ndcg@{self.k}", sum(b.ndcg for b in breakdowns) / count)
            if self.baseline is not None:
                # an invalid reply searched nothing: its gain over raw is -raw
                gains_over_raw = [
                    b.ndcg - (b.raw_ndcg or 0.0) for b in breakdowns if b.raw_ndcg is not None
                ]
                log_metric(f"rewards/gain@{self.k}", sum(gains_over_raw) / count)
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
