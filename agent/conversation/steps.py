"""Model steps as the graph keeps them in state, and as the trajectory records them.

A ``Step`` holds the exact prompt the model read (or none, for a search the graph made
itself), its raw reply, the calls that ran and the decision; ``observe`` adds each tool
round's records, and ``respond`` turns the steps into the episode's ``ModelStep`` records.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage, convert_to_openai_messages

from agent.conversation.search_calls import Decision, ReplyParse
from agent.trajectory.log import ModelStep, ToolAttempt, ToolCallRecord


def to_openai(messages: Iterable[BaseMessage]) -> list[dict[str, Any]]:
    """OpenAI chat dicts; tool messages keep only what the model saw (no artifacts)."""
    return list(convert_to_openai_messages(list(messages)))


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a turn as the state keeps it: what the model (or the graph) said, the
    decision, and once the tools ran, their records."""

    #: How many messages the conversation had before this step (its output starts there).
    prompt_count: int
    #: The exact prompt the model read, as OpenAI dicts (empty for the graph's own search).
    prompt: list[dict[str, Any]]
    raw_output: str
    raw_tool_calls: list[dict[str, Any]]
    #: The calls that ran: ``{"id", "name", "arguments"}``, as the trajectory records them.
    parsed_calls: list[dict[str, Any]]
    parse_class: str
    parse_source: str
    problems: list[str]
    #: ``Decision.kind``: tool_calls, fallback_search, reused_query, relax, answer...
    decision: str
    model_ms: float
    #: When the step ended (epoch seconds): the tools round's wall time is measured from it.
    ended_at: float
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    tools_wall_ms: float = 0.0

    def searched_query(self, words: str) -> bool:
        """Did one of this step's calls search exactly ``words`` (any case)?"""
        return any(str(c["arguments"].get("query", "")).lower() == words for c in self.parsed_calls)

    def called(self, tool: str) -> bool:
        return any(c["name"] == tool for c in self.parsed_calls)

    def to_model_step(self, output_messages: Sequence[BaseMessage]) -> ModelStep:
        """The trajectory's record of this step; ``output_messages``: what it added to the
        conversation (its call and the tool results the model then read)."""
        return ModelStep(
            prompt_messages=list(self.prompt),
            raw_output=self.raw_output,
            raw_tool_calls=self.raw_tool_calls,
            parsed_calls=self.parsed_calls,
            parse_class=self.parse_class,
            parse_source=self.parse_source,
            problems=self.problems,
            decision=self.decision,
            model_ms=self.model_ms,
            tool_calls=list(self.tool_calls),
            output_messages=to_openai(output_messages),
        )


def model_step(
    prompt_count: int,
    prompt: Sequence[BaseMessage],
    reply: AIMessage,
    parse: ReplyParse | None,
    decision: Decision,
    started: float,
) -> Step:
    """A model step, with the exact prompt the model read."""
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


def graph_step(prompt_count: int, decision: Decision) -> Step:
    """A step the graph took without the model (its own search, a relaxed search)."""
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


def _step(prompt_count: int, decision: Decision, **reply: Any) -> Step:
    """The one way a step is made: what the model (or the graph) said, then the decision."""
    return Step(
        prompt_count=prompt_count,
        prompt=reply["prompt"],
        raw_output=reply["raw_output"],
        raw_tool_calls=reply["raw_tool_calls"],
        parsed_calls=[
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in decision.calls
        ],
        parse_class=reply["parse_class"],
        parse_source=reply["parse_source"],
        problems=decision.problems,
        decision=decision.kind,
        model_ms=reply["model_ms"],
        ended_at=time.time(),
    )


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
