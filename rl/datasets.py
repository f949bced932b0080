"""Training data from rollout trajectories, in the conversational formats TRL 1.16 reads.

Rollouts (``rl.rollouts``) are grouped by policy, prompt style and request: the K samples of
one request form a group, compared only with each other (the Rec-R1 / GRPO idea: the query's
difficulty cancels out). Every dataset is conversational, with the tool schemas in a
``tools`` column as a JSON string, exactly as TRL renders it (``apply_chat_template(...,
tools=...)``) with the model's own tools template, so training sees the prompt that
generation and ``shopagent eval`` see:

- DPO (``prompt``, ``chosen``, ``rejected``): per group, the best sample against the worst,
  when their rewards differ by at least ``margin``. Ties go to the lower sample index, i.e.
  the greedy reply: pushing down what the policy does today is the most useful rejection.
  With ``chosen_margin`` the first sample stays chosen unless another beats it by that much.
- KTO (``prompt``, ``completion``, ``label``): each sample's group-normalised advantage
  ``(r - mean) / std``; at least ``threshold`` is desirable, at most ``-threshold``
  undesirable, the rest (and groups without spread) carry no signal and are left out.
- RWR (``prompt``, ``completion``, ``weight``): samples with a reward above ``min_reward``
  (with the ``gain`` reward: better than the raw search), weighted ``exp(advantage / beta)``,
  capped at ``max_weight``. With ``chosen_margin``, filtered behaviour cloning instead: one
  sample per request, chosen as DPO's is (the first unless another beats it by that much).
- GRPO (``prompt``, ``tools``, ``judged``, ``query_text``): one row per request, with its
  judged gains as a JSON object and the shopper's words for the live reward (the ``gain``
  reward searches them raw); by default only requests whose samples disagreed (a group
  without reward spread gives GRPO zero advantage, so zero gradient).

Groups whose samples all scored the same (spread below ``MIN_STD``) teach nothing and are left
out of every dataset. With the ``gain`` reward (``rl.rewards``; what ``shopagent collect``
records by default) the pairs and labels are gain pairs: a sample's reward is its NDCG over
the raw search's.

Extra columns (``query_id``, rewards, advantages) are kept for inspection; TRL drops them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, List, Value

from agent.protocol.tool_schemas import schema_for
from agent.trajectory.log import LogContents, TrajectoryLog, latest_revisions
from rl.rollouts import ROLLOUT_SOURCE, STRATEGY_TOOLS, RolloutKey
from tools.catalog.judgments import Judgments
from tools.errors import BadInput, NotFound

MESSAGES = List({"role": Value("string"), "content": Value("string")})

DPO_FEATURES = Features(
    {
        "prompt": MESSAGES,
        "chosen": MESSAGES,
        "rejected": MESSAGES,
        "tools": Value("string"),
        "query_id": Value("string"),
        "chosen_reward": Value("float64"),
        "rejected_reward": Value("float64"),
    }
)
KTO_FEATURES = Features(
    {
        "prompt": MESSAGES,
        "completion": MESSAGES,
        "label": Value("bool"),
        "tools": Value("string"),
        "query_id": Value("string"),
        "reward": Value("float64"),
        "advantage": Value("float64"),
    }
)
RWR_FEATURES = Features(
    {
        "prompt": MESSAGES,
        "completion": MESSAGES,
        "weight": Value("float64"),
        "tools": Value("string"),
        "query_id": Value("string"),
        "reward": Value("float64"),
        "advantage": Value("float64"),
    }
)
GRPO_FEATURES = Features(
    {
        "prompt": MESSAGES,
        "tools": Value("string"),
        "judged": Value("string"),
        "query_id": Value("string"),
        "query_text": Value("string"),
    }
)

#: Below this reward spread a group is treated as having none (all samples scored alike).
MIN_STD = 1e-6


@dataclass(frozen=True, slots=True)
class Rollout:
    sample_index: int
    completion: str
    parse_class: str
    reward: float
    ndcg: float


@dataclass(slots=True)
class RolloutGroup:
    """The samples one policy wrote for one request, from one prompt."""

    key: RolloutKey
    dataset: str
    query_text: str
    messages: tuple[dict[str, str], ...]
    rollouts: list[Rollout] = field(default_factory=list)

    @property
    def rewards(self) -> list[float]:
        return [r.reward for r in self.rollouts]

    @property
    def tools_json(self) -> str:
        return json.dumps([schema_for(STRATEGY_TOOLS[self.key.strategy])])

    def prompt(self) -> list[dict[str, str]]:
        return [dict(m) for m in self.messages]

    def spread(self) -> float:
        return _std(self.rewards)

    def advantages(self) -> list[float]:
        """``(r - mean) / std`` within the group; all zeros when the group has no spread."""
        rewards = self.rewards
        std = _std(rewards)
        if std < MIN_STD:
            return [0.0] * len(rewards)
        mean = sum(rewards) / len(rewards)
        return [(r - mean) / std for r in rewards]


@dataclass(slots=True)
class RolloutData:
    groups: list[RolloutGroup]
    #: Rollout records read (latest revision of each sample).
    records: int
    #: Damaged log lines skipped (a torn last line after a crash).
    damaged: int
    #: Rollout records left out: another model or dataset, or a strategy without a tool.
    skipped: int

    @property
    def samples(self) -> int:
        return sum(len(g.rollouts) for g in self.groups)


# -- reading ----------------------------------------------------------------------------------


def read_rollouts(
    source: Path | Iterable[Mapping[str, Any]],
    *,
    model_id: str | None = None,
    dataset: str | None = None,
) -> RolloutData:
    """Rollout records (a trajectory log file, or records) grouped by policy and request."""
    damaged = 0
    if isinstance(source, Path):
        if not source.is_file():
            raise NotFound(f"{source}: no such trajectory file")
        contents: LogContents = TrajectoryLog(source).read()
        records = contents.records
        damaged = len(contents.damaged)
    else:
        records = [dict(r) for r in source]
    groups: dict[tuple[RolloutKey, str], RolloutGroup] = {}
    read = skipped = 0
    for record in latest_revisions(r for r in records if r.get("source") == ROLLOUT_SOURCE):
        read += 1
        key = RolloutKey.parse(str(record.get("conversation_id", "")))
        if (
            key is None
            or key.strategy not in STRATEGY_TOOLS
            or (model_id is not None and key.model_id != model_id)
            or (dataset is not None and record.get("dataset") != dataset)
            or not record.get("steps")
        ):
            skipped += 1
            continue
        step = record["steps"][0]
        messages = tuple(
            {"role": str(m["role"]), "content": str(m.get("content") or "")}
            for m in step["prompt_messages"]
        )
        identity = (key, json.dumps(messages))
        group = groups.get(identity)
        if group is None:
            group = groups[identity] = RolloutGroup(
                key, str(record.get("dataset", "")), str(record.get("user_text", "")), messages
            )
        components = record.get("reward", {}).get("components", {})
        group.rollouts.append(
            Rollout(
                sample_index=int(record.get("turn", 0)),
                completion=str(step.get("raw_output", "")),
                parse_class=str(step.get("parse_class", "invalid")),
                reward=float(record["reward"]["total"]),
                ndcg=float(components.get("ndcg@10", 0.0)),
            )
        )
    for group in groups.values():
        group.rollouts.sort(key=lambda r: r.sample_index)
    return RolloutData(list(groups.values()), records=read, damaged=damaged, skipped=skipped)


# -- building ---------------------------------------------------------------------------------


def assistant(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def chosen_sample(group: RolloutGroup, chosen_margin: float = 0.0) -> Rollout:
    """The group's best sample (ties to the lower sample index); with ``chosen_margin`` > 0
    its first sample unless another beats it by at least that much. DPO's chosen reply and
    the one example of filtered behaviour cloning (RWR with ``chosen_margin``)."""
    best = max(group.rollouts, key=lambda r: (r.reward, -r.sample_index))
    first = group.rollouts[0]
    if chosen_margin > 0 and best.reward - first.reward < chosen_margin:
        return first
    return best


def build_dpo_dataset(
    groups: Sequence[RolloutGroup], *, margin: float = 0.1, chosen_margin: float = 0.0
) -> Dataset:
    """Best versus worst sample of each group, where their rewards differ by ``margin``.

    ``chosen_margin`` > 0 keeps the group's first sample (the greedy reply of a sampled
    collect; the copy of the shopper's words in an enumerated one, ``rl.enumerated``) as the
    chosen one unless another sample beats it by at least that much: a change that wins by a
    hair on the training judgments is a coin flip for a small policy, and copying when unsure
    costs nothing against the raw search.
    """
    if margin < 0 or chosen_margin < 0:
        raise BadInput(f"margin and chosen_margin must be >= 0, got {margin}, {chosen_margin}")
    rows = []
    for group in groups:
        if len(group.rollouts) < 2:
            continue
        best = chosen_sample(group, chosen_margin)
        worst = min(group.rollouts, key=lambda r: (r.reward, r.sample_index))
        if best.reward - worst.reward < max(margin, MIN_STD):
            continue
        rows.append(
            {
                "prompt": group.prompt(),
                "chosen": assistant(best.completion),
                "rejected": assistant(worst.completion),
                "tools": group.tools_json,
                "query_id": group.key.query_id,
                "chosen_reward": best.reward,
                "rejected_reward": worst.reward,
            }
        )
    return _dataset(rows, DPO_FEATURES)


def build_kto_dataset(groups: Sequence[RolloutGroup], *, threshold: float = 0.5) -> Dataset:
    """Samples labelled by group-normalised advantage (``>= threshold`` desirable)."""
    if threshold <= 0:
        raise BadInput(f"threshold must be positive, got {threshold}")
    rows = []
    for group in groups:
        for rollout, advantage in zip(group.rollouts, group.advantages(), strict=True):
            if abs(advantage) < threshold:
                continue
            rows.append(
                {
                    "prompt": group.prompt(),
                    "completion": assistant(rollout.completion),
                    "label": advantage > 0,
                    "tools": group.tools_json,
                    "query_id": group.key.query_id,
                    "reward": rollout.reward,
                    "advantage": advantage,
                }
            )
    return _dataset(rows, KTO_FEATURES)


def build_rwr_dataset(
    groups: Sequence[RolloutGroup],
    *,
    beta: float = 1.0,
    min_reward: float = 0.0,
    max_weight: float = 4.0,
    chosen_margin: float | None = None,
) -> Dataset:
    """Samples above ``min_reward``, weighted ``min(max_weight, exp(advantage / beta))``.

    ``chosen_margin`` (>= 0) switches to one sample per request, weight 1: the group's best
    if it beats the first sample (the greedy reply; an enumerated collect's copy) by at least
    that much, else the first -- every request, a group without spread included (its first
    sample is as good as any). Why: weighting every sample that beat the raw search teaches
    a policy to *always* change the request, since most of a group's samples are changes
    (the expand policy trained that way added words to every request, and on the requests
    where they did not help they cost as much as they gained elsewhere); choosing the copy
    unless a change clearly wins teaches it to change only where the feedback says so.
    """
    if beta <= 0 or max_weight <= 0:
        raise BadInput("beta and max_weight must be positive")
    if chosen_margin is not None:
        return _chosen_samples(groups, chosen_margin, min_reward)
    rows = []
    for group in groups:
        if group.spread() < MIN_STD:  # all samples alike: no preference to learn
            continue
        for rollout, advantage in zip(group.rollouts, group.advantages(), strict=True):
            if rollout.reward <= min_reward:
                continue
            rows.append(
                {
                    "prompt": group.prompt(),
                    "completion": assistant(rollout.completion),
                    "weight": min(max_weight, math.exp(advantage / beta)),
                    "tools": group.tools_json,
                    "query_id": group.key.query_id,
                    "reward": rollout.reward,
                    "advantage": advantage,
                }
            )
    return _dataset(rows, RWR_FEATURES)


def _chosen_samples(
    groups: Sequence[RolloutGroup], chosen_margin: float, min_reward: float
) -> Dataset:
    """``build_rwr_dataset`` with ``chosen_margin``: each request's chosen sample, weight 1."""
    if chosen_margin < 0:
        raise BadInput(f"chosen_margin must be >= 0, got {chosen_margin}")
    rows = []
    for group in groups:
        first = group.rollouts[0]
        chosen = chosen_sample(group, chosen_margin)
        if chosen.reward <= min_reward:
            continue
        rows.append(
            {
                "prompt": group.prompt(),
                "completion": assistant(chosen.completion),
                "weight": 1.0,
                "tools": group.tools_json,
                "query_id": group.key.query_id,
                "reward": chosen.reward,
                "advantage": chosen.reward - first.reward,
            }
        )
    return _dataset(rows, RWR_FEATURES)


def build_grpo_dataset(
    groups: Sequence[RolloutGroup], judgments: Judgments, *, only_informative: bool = True
) -> Dataset:
    """One prompt per request (first seen), with the judged gains the live reward needs."""
    rows = []
    seen: set[tuple[str, str]] = set()
    for group in groups:
        identity = (group.key.strategy, group.key.query_id)
        if identity in seen:
            continue
        if only_informative and group.spread() < MIN_STD:
            continue
        gains = judgments.gains(group.key.query_id)
        if not any(gain > 0 for gain in gains.values()):
            continue
        seen.add(identity)
        rows.append(
            {
                "prompt": group.prompt(),
                "tools": group.tools_json,
                "judged": json.dumps(dict(gains), sort_keys=True),
                "query_id": group.key.query_id,
                "query_text": group.query_text,
            }
        )
    return _dataset(rows, GRPO_FEATURES)


def _dataset(rows: list[dict[str, Any]], features: Features) -> Dataset:
    columns = {name: [row[name] for row in rows] for name in features}
    return Dataset.from_dict(columns, features=features)


def _std(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
