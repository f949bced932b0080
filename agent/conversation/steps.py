"""Model steps as the graph keeps them in state, and as the trajectory records them.

A step holds the exact prompt the model read (or none, for a search the graph made itself),
its raw reply, the calls that ran and the decision; ``respond`` turns the steps into the
episode's ``ModelStep`` records, with each tool round's attempts and hits.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage, convert_to_openai_messages

from agent.conversation.search_calls import Decision, ReplyParse
from agent.trajectory.log import ToolAttempt, ToolCallRecord


def to_openai(messages: Iterable[BaseMessage]) -> list[dict[str, Any]]:
    """OpenAI chat dicts; tool messages keep only what the model saw (no artifacts)."""
    return list(convert_to_openai_messages(list(messages)))


def model_step(
    prompt_count: int,
    prompt: Sequence[BaseMessage],
    reply: AIMessage,
    parse: ReplyParse | None,
    decision: Decision,
    started: float,
) -> dict[str, Any]:
    """A model step as kept in state, with the exact prompt the model read."""
    return _step(
        prompt_count,
        decision,
        prompt=to_openai(prompt),
        raw_output=reply.text,
        raw_tool_calls=parse.raw_tool_calls if parse else [],
        parse_class=parse.parse_class if parse else "invalid",
        parse_source=parse.source if parse else "none",
        model_ms=round((time.perf_counter() - started) * 1000, 3),
    )


def graph_step(prompt_count: int, decision: Decision) -> dict[str, Any]:
    """A step the graph took without the model (a relaxed search)."""
    return _step(
        prompt_count,
        decision,
        prompt=[],
        raw_output="",
        raw_tool_calls=[],
        parse_class="valid",
        parse_source="graph",
        model_ms=0.0,
    )


def _step(prompt_count: int, decision: Decision, **reply: Any) -> dict[str, Any]:
    """The one shape of a step in state: what the model (or the graph) said, then the decision."""
    return {
        "prompt_count": prompt_count,
        "prompt": reply["prompt"],
        "raw_output": reply["raw_output"],
        "raw_tool_calls": reply["raw_tool_calls"],
        "parsed_calls": [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in decision.calls
        ],
        "parse_class": reply["parse_class"],
        "parse_source": reply["parse_source"],
        "problems": decision.problems,
        "decision": decision.kind,
        "model_ms": reply["model_ms"],
        "ended_at": time.time(),
        "tool_calls": [],
    }


def tool_record(message: ToolMessage, call: Mapping[str, Any]) -> ToolCallRecord:
    artifact = message.artifact if isinstance(message.artifact, dict) else None
    if artifact is None:  # the tool raised (bad arguments): what the model was told
        attempts = [
            ToolAttempt(
                tool=str(call.get("name", "")),
                arguments=dict(call.get("args", {})),
                ok=False,
                error=str(message.content)[:500],
            )
        ]
    else:
        attempts = [ToolAttempt.from_dict(a) for a in artifact["attempts"]]
    return ToolCallRecord(
        call_id=str(message.tool_call_id),
        name=str(call.get("name") or message.name or ""),
        arguments=dict(call.get("args", {})),
        attempts=attempts,
    )
