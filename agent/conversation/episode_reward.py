"""The chat's episode reward (the RL reward is ``rl.rewards``, a different thing): what the
shopper did with a turn, what judgments say of its searches, and what the model got wrong.

A non-empty search is not a success by itself (every search on a big catalog returns
something), so nothing is paid for merely showing products. The total is the plain sum of
named components, all recorded, so the RL job can re-weight:

- ``ndcg@10`` (judged episodes): the best NDCG@10 any of the turn's searches reached against
  the query's judgments. That is what writing a good query earns.
- ``feedback``: the shopper's reaction, added later as a new revision: ``like`` +0.5,
  ``buy`` +1.0 per product (each kind counted once per product).
- ``refined``: ``REFINED`` (weak negative), added later when the shopper's next message
  refines this turn's results ("cheaper", "only Logitech", "with bluetooth"): what was
  shown was not quite it. A new product or a question about a shown one adds nothing.
- ``nothing_found``: ``NOTHING_FOUND`` when the turn searched and showed no product;
  ``relaxed``: ``RELAXED`` per constraint the graph had to drop to find anything.
- ``constraints``: ``CONSTRAINT_OVERRIDE`` per filter in the model's call that contradicted
  the shopper's stated constraints (a ceiling written as a floor, a brand never asked for);
  the graph ran the search with the shopper's constraints instead.
- ``tool_errors``: ``TOOL_ERROR`` per tool call that failed even after its fallback.
- ``format``: the mean parse penalty over the steps in which the model wrote (or failed to
  write) a call: valid 0, repaired ``REPAIRED_CALL_PENALTY``, invalid ``INVALID_CALL_PENALTY``.
- ``grounding``: ``GROUNDING_VIOLATION`` once if the model's prose claimed anything no tool
  returned (a product, a price, a store-wide offer).

So a plain live turn with a clean call scores 0; ``export --min-reward 0.5`` keeps turns the
shopper liked or bought (or judged ones with NDCG@10 >= 0.5), and a reversed budget
(-0.25), a turn the shopper had to refine (-0.2) or an unusable call (-0.5) falls below 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from agent.trajectory.log import Feedback, ModelStep, Reward
from tools.metrics import NDCG_K, ndcg

TOOL_ERROR = -0.25
REPAIRED_CALL_PENALTY = -0.1
INVALID_CALL_PENALTY = -0.5
GROUNDING_VIOLATION = -0.5
NOTHING_FOUND = -0.25
RELAXED = -0.1
CONSTRAINT_OVERRIDE = -0.25
REFINED = -0.2
FEEDBACK_REWARDS: dict[str, float] = {"like": 0.5, "buy": 1.0}
#: Problems ``graph`` records when the state replaced a filter of the model's call.
OVERRIDE_NOTE = "overridden:"

_FORMAT_PENALTY = {
    "valid": 0.0,
    "repaired": REPAIRED_CALL_PENALTY,
    "invalid": INVALID_CALL_PENALTY,
}


def judged_ndcg(ranking: Sequence[str], judged: Mapping[str, int]) -> float:
    """NDCG@10 of one tool result's product ids against the query's graded judgments."""
    return ndcg(list(ranking), judged, NDCG_K)


def format_penalty(steps: Iterable[ModelStep]) -> float:
    """Mean parse penalty over steps where the model wrote (or failed to write) a call."""
    penalties = [
        _FORMAT_PENALTY.get(step.parse_class, INVALID_CALL_PENALTY)
        for step in steps
        if step.decision in ("tool_calls", "fallback_search") and step.parse_source != "graph"
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
    relaxed: int = 0,
    searched: bool = True,
) -> Reward:
    """The reward of one turn (see the module docstring for each component)."""
    calls = [call for step in steps for call in step.tool_calls]
    components: dict[str, float] = {}
    has_judgments = bool(judged) and any(gain > 0 for gain in (judged or {}).values())
    if has_judgments:
        scores = [c.ndcg_at_10 for c in calls if c.ndcg_at_10 is not None]
        components["ndcg@10"] = max(scores, default=0.0)
    failed = sum(1 for c in calls if not any(a.ok for a in c.attempts))
    components["tool_errors"] = TOOL_ERROR * failed
    components["nothing_found"] = NOTHING_FOUND if searched and not shown_count else 0.0
    components["relaxed"] = RELAXED * relaxed
    overrides = sum(1 for s in steps for p in s.problems if p.startswith(OVERRIDE_NOTE))
    components["constraints"] = CONSTRAINT_OVERRIDE * overrides
    components["format"] = format_penalty(steps)
    components["grounding"] = GROUNDING_VIOLATION if violations else 0.0
    components["feedback"] = feedback_reward(feedback)
    components = {name: value + 0.0 for name, value in components.items()}  # no -0.0
    total = round(sum(components.values()), 6)
    return Reward(
        total=total, components=components, source="judgments" if has_judgments else "live"
    )


def with_feedback(reward: Reward, feedback: Sequence[Feedback]) -> Reward:
    """The same reward with the ``feedback`` component recomputed from all feedback so far."""
    return with_component(reward, "feedback", feedback_reward(feedback))


def with_component(reward: Reward, name: str, value: float) -> Reward:
    """The same reward with one component set (``refined`` is added this way)."""
    components = {**reward.components, name: value}
    return Reward(round(sum(components.values()), 6), components, reward.source)
