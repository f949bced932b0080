"""Hand-made rollout records for the RL tests: real parses of written replies, chosen NDCGs."""

from __future__ import annotations

from pathlib import Path

from agent.protocol.tool_calls import parse_tool_calls
from agent.protocol.tool_schemas import schema_for
from agent.protocol.writer_prompts import build_prompt
from agent.runtime.generation import Generation
from agent.trajectory.log import EpisodeRecord, TrajectoryLog
from rl.rewards import combine
from rl.rollouts import STRATEGY_TOOLS, RolloutKey, rollout_record
from tools.catalog.judgments import Query

MODEL = "smollm2-135m"


def valid(query: str) -> str:
    return (
        f'<tool_call>{{"name": "search_products", "arguments": {{"query": "{query}"}}}}</tool_call>'
    )


def repaired(query: str) -> str:
    """The taught format without its closing tag: usable, but the parser had to fix it."""
    return f'<tool_call>{{"name": "search_products", "arguments": {{"query": "{query}"}}}}'


PROSE = "Great choice! Porcelain tiles are durable and easy to clean."


def rollout(
    query: Query,
    sample_index: int,
    text: str,
    ndcg: float,
    *,
    model_id: str = MODEL,
    strategy: str = "policy",
    dataset: str = "homedepot",
) -> EpisodeRecord:
    """One scored sample as ``rl.rollouts`` logs it; ``ndcg`` stands in for the live search."""
    tool = STRATEGY_TOOLS[strategy]
    prompt = build_prompt(tool, query.text)
    parsed = parse_tool_calls(text, [schema_for(tool)])
    breakdown = combine(parsed.parse_class, ndcg if parsed.calls else 0.0)
    generation = Generation(text=text, parsed=parsed, prompt_tokens=170, completion_ids=(1, 2))
    return rollout_record(
        RolloutKey(model_id, strategy, query.id),
        sample_index,
        query,
        prompt,
        generation,
        breakdown,
        [],
        model_ms=10.0,
        tool_ms=1.0,
        dataset=dataset,
    )


def write_log(path: Path, records: list[EpisodeRecord]) -> Path:
    log = TrajectoryLog(path)
    for record in records:
        log.append(record)
    return path
