"""The chat's episode reward (the RL reward is ``rl.rewards``, a different thing): judged
relevance when the episode has judgments, live signals otherwise.

The total is the plain sum of named components, all recorded, so the RL job can re-weight:

- ``ndcg@10`` (judged episodes): the best NDCG@10 any of the turn's tool results reached
  against the query's judgments. That is what writing a good query earns, whatever the
  model then picks to mention.
- ``results`` (live episodes): ``LIVE_RESULTS`` when the shopper was shown products, else 0.
- ``tool_errors`` (live): ``TOOL_ERROR`` per tool call that failed even after its fallback.
- ``format``: the mean parse penalty over the model's tool-calling steps: valid 0,
  repaired ``REPAIRED_CALL_PENALTY``, invalid ``INVALID_CALL_PENALTY``.
- ``grounding``: ``GROUNDING_VIOLATION`` once if the model cited anything the tools never
  returned (or misquoted a catalog price).
- ``feedback``: the shopper's reaction, added later: ``like`` +0.5, ``buy`` +1.0 per product
  (each kind counted once per product).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from agent.trajectory.log import Feedback, ModelStep, Reward
from tools.metrics import NDCG_K, ndcg

LIVE_RESULTS = 0.5
TOOL_ERROR = -0.25
REPAIRED_CALL_PENALTY = -0.1
INVALID_CALL_PENALTY = -0.5
GROUNDING_VIOLATION = -0.5
FEEDBACK_REWARDS: dict[str, float] = {"like": 0.5, "buy": 1.0}

_FORMAT_PENALTY = {
    "valid": 0.0,
    "repaired": REPAIRED_CALL_PENALTY,
    "invalid": INVALID_CALL_PENALTY,
}


def judged_ndcg(ranking: Sequence[str], judged: Mapping[str, int]) -> float:
    """NDCG@10 of one tool result's product ids against the query's graded judgments."""
    return ndcg(list(ranking), judged, NDCG_K)


def format_penalty(steps: Iterable[ModelStep]) -> float:
    """Mean parse penalty over steps that called (or tried to call) a tool."""
    penalties = [
        _FORMAT_PENALTY.get(step.parse_class, INVALID_CALL_PENALTY)
        for step in steps
        if step.decision in ("tool_calls", "fallback_search")
    ]
    return sum(penalties) / len(penalties) if penalties else 0.0


def feedback_reward(feedback: Iterable[Feedback]) -> float:
    seen = {(f.kind, f.product_id) for f in feedback}
    return sum(FEEDBACK_REWARDS.get(kind, 0.0) for kind, _ in seen)


def episode_reward(
    steps: Sequence[ModelStep],
    *,
    judged: Mapping[str, int] | None,
    shown_count: int,
    violations: Sequence[str],
    feedback: Sequence[Feedback] = (),
) -> Reward:
    """The reward of one turn (see the module docstring for each component)."""
    calls = [call for step in steps for call in step.tool_calls]
    components: dict[str, float] = {}
    has_judgments = bool(judged) and any(gain > 0 for gain in (judged or {}).values())
    if has_judgments:
        scores = [c.ndcg_at_10 for c in calls if c.ndcg_at_10 is not None]
        components["ndcg@10"] = max(scores, default=0.0)
    else:
        components["results"] = LIVE_RESULTS if shown_count else 0.0
        failed = sum(1 for c in calls if not any(a.ok for a in c.attempts))
        components["tool_errors"] = TOOL_ERROR * failed
    components["format"] = format_penalty(steps)
    components["grounding"] = GROUNDING_VIOLATION if violations else 0.0
    components["feedback"] = feedback_reward(feedback)
    total = round(sum(components.values()), 6)
    return Reward(
        total=total, components=components, source="judgments" if has_judgments else "live"
    )


def with_feedback(reward: Reward, feedback: Sequence[Feedback]) -> Reward:
    """The same reward with the ``feedback`` component recomputed from all feedback so far."""
    components = {**reward.components, "feedback": feedback_reward(feedback)}
    return Reward(round(sum(components.values()), 6), components, reward.source)
