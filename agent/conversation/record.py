"""The episode record of a finished turn: what the trajectory log keeps and RL trains on.

Why apart from ``respond``: the record's format is a contract with ``agent.trajectory`` and
the RL datasets, so it is built in one place from the state, whatever the reply was.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from agent.conversation.deps import AgentDeps
from agent.conversation.episode_reward import episode_reward
from agent.conversation.products import ShownProduct
from agent.conversation.state import AgentState
from agent.trajectory.log import EpisodeRecord, Latency, utc_now


def episode_record(
    state: AgentState,
    deps: AgentDeps,
    *,
    text: str,
    products: Sequence[ShownProduct],
    violations: Sequence[str],
    stop_reason: str,
    relaxed: Sequence[str],
) -> EpisodeRecord:
    """The turn as the log records it: each step with the messages it added, the reply, the
    products shown, the reward and where the time went."""
    messages = state.messages
    ends = [s.prompt_count for s in state.steps[1:]] + [len(messages)]
    steps = [
        step.to_model_step(messages[step.prompt_count : end])
        for step, end in zip(state.steps, ends, strict=False)
    ]
    model_ms = sum(s.model_ms for s in steps)
    tool_ms = sum(s.tools_wall_ms for s in state.steps)
    total_ms = (time.time() - state.turn_started_at) * 1000
    reward = episode_reward(
        steps,
        judged=state.judged,
        shown_count=len(products),
        violations=list(violations),
        relaxed=len(relaxed),
        searched=bool(state.rounds),
    )
    return EpisodeRecord(
        conversation_id=state.conversation_id,
        turn=state.turn,
        source=deps.source,
        model_id=deps.model_id,
        model_checkpoint=deps.model_checkpoint,
        dataset=deps.dataset,
        catalog_version=deps.catalog_version(),
        user_text=state.user_text,
        steps=steps,
        final_answer=text,
        recommended=[p.as_record() for p in products],
        grounding_violations=list(violations),
        stop_reason=stop_reason,
        reward=reward,
        latency=Latency(
            model_ms=round(model_ms, 3),
            tool_ms=round(tool_ms, 3),
            graph_ms=round(max(0.0, total_ms - model_ms - tool_ms), 3),
            total_ms=round(total_ms, 3),
        ),
        started_at=_iso(state.turn_started_at),
        finished_at=utc_now(),
        query_id=state.query_id,
    )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")
