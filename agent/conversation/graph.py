"""The shopping agent as a LangGraph ``StateGraph``: start -> plan -> tools -> observe -> respond.

- ``plan``: the model decides: call tools (a lexical query with filters, concepts, or both),
  ask a clarifying question, or answer. Native ``tool_calls`` are used when the server parsed
  them; otherwise the reply text goes through ``agent.protocol.tool_calls.parse_tool_calls``. Either
  way the calls are checked against the schemas and the parse class is recorded.
- ``tools``: a ``ToolNode`` over the search tools (see ``agent.conversation.tool_node``).
- ``observe``: records each tool result (ids, ranks, scores, NDCG@10 against the turn's
  judgments when it has them) and decides whether there is time for another round.
- ``respond``: grounds the answer (``agent.conversation.grounding``), scores the episode
  (``agent.conversation.episode_reward``) and appends it to the trajectory log.

A turn never exceeds ``max_tool_calls`` tool calls or ``turn_timeout_s`` of wall time: past
either, the agent answers with what it found so far.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    ToolMessage,
    convert_to_openai_messages,
    message_chunk_to_message,
)
from langchain_core.runnables import Runnable
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent.conversation.constraints import enforce_stated_prices, without_prices
from agent.conversation.episode_reward import episode_reward, judged_ndcg
from agent.conversation.grounding import ground_answer
from agent.conversation.prompts import BUDGET_NOTE, build_prompt, fallback_answer
from agent.conversation.state import (
    AgentLimits,
    AgentState,
    FinalAnswer,
    ProductsShown,
    TextChunk,
    shown_from_dict,
)
from agent.conversation.tool_node import (
    AgentToolbox,
    AgentTools,
    build_tool_node,
    call_with_timeout,
)
from agent.protocol.tool_calls import ParsedToolCall, parse_openai_message, parse_tool_calls
from agent.protocol.tool_schemas import SEARCH_CONCEPTS, SEARCH_PRODUCTS, TOOL_SCHEMAS, tool_schemas
from agent.trajectory.log import (
    EpisodeRecord,
    HitRecord,
    Latency,
    ModelStep,
    ToolAttempt,
    ToolCallRecord,
    TrajectoryLog,
    utc_now,
)
from tools.catalog.product import Product
from tools.errors import BadInput

#: Seconds a catalog re-read may take at answer time before the tool's copy is used.
CATALOG_REREAD_TIMEOUT_S = 5.0


@dataclass(slots=True)
class AgentDeps:
    """What the graph's nodes work with besides the model."""

    toolbox: AgentToolbox
    limits: AgentLimits = field(default_factory=AgentLimits)
    log: TrajectoryLog | None = None
    model_id: str = "unknown"
    model_checkpoint: str | None = None
    dataset: str = ""
    catalog_version: Callable[[], str | None] = lambda: None
    source: str = "chat"


@dataclass(frozen=True, slots=True)
class EpisodeRecorded:
    """Streamed after ``FinalAnswer``: the full record (the session keeps it for feedback)."""

    record: EpisodeRecord
    log_error: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyParse:
    calls: list[ParsedToolCall]
    parse_class: str
    source: Literal["native", "text", "none"]
    problems: list[str]
    content: str
    raw_tool_calls: list[dict[str, Any]]

    @property
    def attempted_call(self) -> bool:
        """Did the model try to call a tool (even if nothing usable came of it)?"""
        return bool(self.calls) or self.problems != ["no tool call"]


def turn_input(
    user_text: str,
    *,
    conversation_id: str,
    judged: Mapping[str, int] | None = None,
    query_id: str | None = None,
) -> dict[str, Any]:
    """The graph input for one shopper message (every caller must pass judged/query_id)."""
    text = " ".join(str(user_text).split())
    if not text:
        raise BadInput("the message is empty")
    return {
        "messages": [HumanMessage(text)],
        "conversation_id": conversation_id,
        "judged": {str(k): int(v) for k, v in (judged or {}).items()},
        "query_id": query_id,
    }


def parse_reply(message: AIMessage, *, id_prefix: str) -> ReplyParse:
    """Tool calls from a reply: the server's ``tool_calls`` if any, else parsed from the text.

    Native calls go through ``parse_openai_message`` (written back into the taught
    ``<tool_call>`` form and parsed with the prose), so a reply gets the same class whether the
    server or this node parsed it. Call ids are made unique per turn and step.
    """
    raw_native = [*message.tool_calls, *message.invalid_tool_calls]
    raw = [_openai_call(call) for call in raw_native]
    if raw:
        parsed = parse_openai_message(message.text, raw, TOOL_SCHEMAS)
        source: Literal["native", "text", "none"] = "native"
    else:
        parsed = parse_tool_calls(message.text, TOOL_SCHEMAS)
        source = "text" if parsed.calls else "none"
    calls = [replace(call, id=f"{id_prefix}_{i}") for i, call in enumerate(parsed.calls)]
    return ReplyParse(
        calls, str(parsed.parse_class), source, list(parsed.problems), parsed.content, raw
    )


def build_graph(
    llm: BaseChatModel, deps: AgentDeps, checkpointer: BaseCheckpointSaver | None = None
) -> CompiledStateGraph:
    """Compile the agent; with a checkpointer, conversations persist by ``thread_id``."""
    nodes = _Nodes(llm, deps)
    graph = StateGraph(AgentState)
    graph.add_node("start", nodes.start)
    graph.add_node("plan", nodes.plan)
    graph.add_node("tools", build_tool_node(nodes.tools))
    graph.add_node("observe", nodes.observe)
    graph.add_node("respond", nodes.respond)
    graph.add_edge(START, "start")
    graph.add_edge("start", "plan")
    graph.add_conditional_edges("plan", _after_plan, {"tools": "tools", "respond": "respond"})
    graph.add_edge("tools", "observe")
    graph.add_conditional_edges("observe", _after_observe, {"plan": "plan", "respond": "respond"})
    graph.add_edge("respond", END)
    return graph.compile(checkpointer=checkpointer)


def model_id_of(llm: BaseChatModel) -> str:
    for attribute in ("model_name", "model", "model_id"):
        value = getattr(llm, attribute, None)
        if isinstance(value, str) and value:
            return value
    return type(llm).__name__


# -- routing ---------------------------------------------------------------------------------


def _after_plan(state: AgentState) -> str:
    last = state["messages"][-1]
    if isinstance(last, AIMessage) and last.tool_calls and state.get("stop_reason") is None:
        return "tools"
    return "respond"


def _after_observe(state: AgentState) -> str:
    return "respond" if state.get("stop_reason") is not None else "plan"


# -- nodes -----------------------------------------------------------------------------------


class _Nodes:
    def __init__(self, llm: BaseChatModel, deps: AgentDeps) -> None:
        self.llm = llm
        self.deps = deps
        self.limits = deps.limits
        self.tools = AgentTools(deps.toolbox, deps.limits)
        self.llm_with_tools: Runnable = _bind_tools(llm)

    def start(self, state: AgentState) -> dict[str, Any]:
        now = time.time()
        last_human = next(m for m in reversed(state["messages"]) if isinstance(m, HumanMessage))
        return {
            "messages": _close_interrupted_calls(state["messages"]),
            "conversation_id": state.get("conversation_id") or "",
            "turn": int(state.get("turn") or 0) + 1,
            "user_text": last_human.text,
            "judged": state.get("judged") or {},
            "query_id": state.get("query_id"),
            "turn_started_at": now,
            "turn_deadline": now + self.limits.turn_timeout_s,
            "tool_calls_used": 0,
            "steps": [],
            "turn_product_ids": [],
            "stop_reason": None,
            "answer_text": None,
        }

    def plan(self, state: AgentState) -> dict[str, Any]:
        if time.time() >= state["turn_deadline"]:
            return {"stop_reason": "timeout"}
        steps = list(state.get("steps") or [])
        budget_left = self.limits.max_tool_calls - int(state.get("tool_calls_used") or 0)
        note = None if budget_left > 0 else BUDGET_NOTE
        messages = state["messages"]
        prompt = build_prompt(messages, self.limits.history_turns, note)
        model = self.llm_with_tools if budget_left > 0 else self.llm
        started = time.perf_counter()
        try:
            reply, timed_out = _generate(model, prompt, state["turn_deadline"])
        except Exception as error:  # the model server is down or refused: answer, don't crash
            problem = _one_line(error)
            failed = Decision("model_error", [], [problem], "model_error", None)
            steps.append(_step(len(messages), note, AIMessage(""), None, failed, started))
            return {"steps": steps, "stop_reason": "model_error", "answer_text": None}
        call_prefix = f"call_t{state['turn']}s{len(steps)}"
        parse = parse_reply(reply, id_prefix=call_prefix)
        decision = _decide(parse, state, budget_left=budget_left, timed_out=timed_out)
        steps.append(_step(len(messages), note, reply, parse, decision, started))
        update: dict[str, Any] = {
            "steps": steps,
            "stop_reason": decision.stop_reason,
            "answer_text": decision.answer_text,
        }
        if decision.calls:
            used = int(state.get("tool_calls_used") or 0)
            update["tool_calls_used"] = used + len(decision.calls)
            content = parse.content if decision.kind == "tool_calls" else ""
            tool_calls = [
                {"name": c.name, "args": c.arguments, "id": c.id, "type": "tool_call"}
                for c in decision.calls
            ]
            update["messages"] = [AIMessage(content=content, tool_calls=tool_calls)]
        elif decision.answer_text is not None:
            update["messages"] = [AIMessage(content=decision.answer_text, id=_new_id())]
        return update

    def observe(self, state: AgentState) -> dict[str, Any]:
        messages = state["messages"]
        last_ai = max(i for i, m in enumerate(messages) if isinstance(m, AIMessage))
        requested = {c["id"]: c for c in messages[last_ai].tool_calls}  # type: ignore[union-attr]
        judged = state.get("judged") or {}
        records: list[ToolCallRecord] = []
        found: dict[str, Any] = {}
        turn_ids = list(state.get("turn_product_ids") or [])
        for message in messages[last_ai + 1 :]:
            if not isinstance(message, ToolMessage):
                continue
            call = requested.get(message.tool_call_id, {"name": message.name or "", "args": {}})
            record = _tool_record(message, call)
            products = (
                (message.artifact or {}).get("products")
                if isinstance(message.artifact, dict)
                else None
            )
            for product in products or []:
                found.setdefault(product["id"], product)
                if product["id"] not in turn_ids:
                    turn_ids.append(product["id"])
            if judged and record.attempts:
                record.ndcg_at_10 = judged_ndcg([h.product_id for h in record.hits], judged)
            records.append(record)
        steps = list(state.get("steps") or [])
        if steps:
            # wall time of the tools round: parallel calls overlap, so their sum would overstate it
            tools_wall_ms = (time.time() - steps[-1]["ended_at"]) * 1000
            steps[-1] = {
                **steps[-1],
                "tool_calls": [asdict(r) for r in records],
                "tools_wall_ms": round(tools_wall_ms, 3),
            }
        update: dict[str, Any] = {"steps": steps, "retrieved": found, "turn_product_ids": turn_ids}
        if time.time() >= state["turn_deadline"]:
            update["stop_reason"] = "timeout"
        return update

    def respond(self, state: AgentState) -> dict[str, Any]:
        writer = get_stream_writer()
        stop_reason = state.get("stop_reason") or "answered"
        retrieved = state.get("retrieved") or {}
        turn_ids = list(state.get("turn_product_ids") or [])
        grounded = ground_answer(
            state.get("answer_text") or "",
            turn_ids=turn_ids,
            retrieved=retrieved,
            lookup=self._catalog_lookup,
            limit=self.limits.shown_products,
        )
        text = grounded.text or fallback_answer(stop_reason, len(grounded.products))
        if stop_reason == "model_error":
            error = (state.get("steps") or [{}])[-1].get("problems", ["unknown error"])[0]
            text = f"The model is unavailable ({error}). {text}"
        shown = [shown_from_dict(p) for p in grounded.products]
        record = self._record(state, text, grounded.products, grounded.violations, stop_reason)
        log_error = None
        if self.deps.log is not None:
            try:
                self.deps.log.append(record)
            except OSError as error:
                log_error = f"trajectory not saved: {_one_line(error)}"
        if shown:
            writer(ProductsShown(shown))
        writer(
            FinalAnswer(
                text=text,
                products=shown,
                stop_reason=stop_reason,
                episode_id=record.episode_id,
                reward=record.reward.total,
                violations=list(grounded.violations),
            )
        )
        writer(EpisodeRecorded(record, log_error))
        messages = state["messages"]
        last = messages[-1]
        answer = AIMessage(content=text, id=last.id if _is_answer(last) else _new_id())
        summary = {
            "turn": state["turn"],
            "episode_id": record.episode_id,
            "user_text": state["user_text"],
            "answer": text,
            "products": grounded.products,
            "stop_reason": stop_reason,
        }
        return {"messages": [answer], "turns": [*(state.get("turns") or []), summary]}

    def _catalog_lookup(self, product_id: str) -> Product | None:
        return call_with_timeout(
            lambda: self.deps.toolbox.get(product_id), CATALOG_REREAD_TIMEOUT_S
        )

    def _record(
        self,
        state: AgentState,
        text: str,
        products: list[dict[str, Any]],
        violations: list[str],
        stop_reason: str,
    ) -> EpisodeRecord:
        messages = state["messages"]
        raw_steps = list(state.get("steps") or [])
        ends = [s["prompt_count"] for s in raw_steps[1:]] + [len(messages)]
        steps = [
            self._model_step(step, messages, end) for step, end in zip(raw_steps, ends, strict=True)
        ]
        model_ms = sum(s.model_ms for s in steps)
        tool_ms = sum(s.get("tools_wall_ms", 0.0) for s in raw_steps)
        total_ms = (time.time() - state["turn_started_at"]) * 1000
        reward = episode_reward(
            steps, judged=state.get("judged"), shown_count=len(products), violations=violations
        )
        return EpisodeRecord(
            conversation_id=state.get("conversation_id") or "",
            turn=state["turn"],
            source=self.deps.source,
            model_id=self.deps.model_id,
            model_checkpoint=self.deps.model_checkpoint,
            dataset=self.deps.dataset,
            catalog_version=self.deps.catalog_version(),
            user_text=state["user_text"],
            steps=steps,
            final_answer=text,
            recommended=products,
            grounding_violations=list(violations),
            stop_reason=stop_reason,
            reward=reward,
            latency=Latency(
                model_ms=round(model_ms, 3),
                tool_ms=round(tool_ms, 3),
                graph_ms=round(max(0.0, total_ms - model_ms - tool_ms), 3),
                total_ms=round(total_ms, 3),
            ),
            started_at=_iso(state["turn_started_at"]),
            finished_at=utc_now(),
            query_id=state.get("query_id"),
        )

    def _model_step(
        self, step: Mapping[str, Any], messages: Sequence[AnyMessage], end: int
    ) -> ModelStep:
        count = step["prompt_count"]
        prompt = build_prompt(messages[:count], self.limits.history_turns, step["note"])
        return ModelStep(
            prompt_messages=to_openai(prompt),
            raw_output=step["raw_output"],
            raw_tool_calls=step["raw_tool_calls"],
            parsed_calls=step["parsed_calls"],
            parse_class=step["parse_class"],
            parse_source=step["parse_source"],
            problems=step["problems"],
            decision=step["decision"],
            model_ms=step["model_ms"],
            tool_calls=[_tool_call_from_dict(c) for c in step.get("tool_calls") or []],
            output_messages=to_openai(messages[count:end]),
        )


# -- helpers ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """What the plan node makes of a reply (``kind`` is recorded as the step's decision)."""

    kind: str  # tool_calls | fallback_search | answer | clarify | timeout | model_error
    calls: list[ParsedToolCall]
    problems: list[str]
    stop_reason: str | None
    answer_text: str | None


def _decide(parse: ReplyParse, state: AgentState, *, budget_left: int, timed_out: bool) -> Decision:
    problems = list(parse.problems)
    if timed_out:
        return Decision("timeout", [], problems, "timeout", None)
    if parse.calls and budget_left > 0:
        if len(parse.calls) > budget_left:
            problems.append(f"over budget: {len(parse.calls) - budget_left} call(s) dropped")
        calls = _with_stated_prices(parse.calls[:budget_left], state["user_text"], problems)
        return Decision("tool_calls", calls, problems, None, None)
    found_any = bool(state.get("turn_product_ids"))
    never_searched = not state.get("retrieved")
    text = parse.content.strip()
    asks = text.endswith("?") and not found_any
    if (
        budget_left > 0
        and not found_any
        and (parse.attempted_call or (never_searched and not asks))
    ):
        # An unusable tool call, or an answer with nothing found yet in the whole conversation
        # (a small model often chats instead of searching): search the shopper's own words, so
        # an answer always rests on real products rather than on what the model imagines.
        query = {"query": without_prices(state["user_text"]) or state["user_text"]}
        call = ParsedToolCall(SEARCH_PRODUCTS, query, f"call_t{state['turn']}_fallback")
        calls = _with_stated_prices([call], state["user_text"], problems)
        return Decision("fallback_search", calls, problems, None, None)
    stop = ("clarify" if asks else "answered") if budget_left > 0 else "budget"
    return Decision("clarify" if asks else "answer", [], problems, stop, text)


def _with_stated_prices(
    calls: Sequence[ParsedToolCall], user_text: str, problems: list[str]
) -> list[ParsedToolCall]:
    """Search calls carry the shopper's stated budget even when the model left it out."""
    fixed: list[ParsedToolCall] = []
    for call in calls:
        if call.name in (SEARCH_PRODUCTS, SEARCH_CONCEPTS):
            arguments = dict(call.arguments)
            problems.extend(enforce_stated_prices(arguments, user_text))
            call = ParsedToolCall(call.name, arguments, call.id)
        fixed.append(call)
    return fixed


def to_openai(messages: Iterable[BaseMessage]) -> list[dict[str, Any]]:
    """OpenAI chat dicts; tool messages keep only what the model saw (no artifacts)."""
    return list(convert_to_openai_messages(list(messages)))


def _generate(model: Runnable, prompt: list[AnyMessage], deadline: float) -> tuple[AIMessage, bool]:
    """Stream the reply, showing text as it comes (never tool-call markup); stop at the deadline."""
    writer = get_stream_writer()
    visible = _VisibleText()
    merged: AIMessageChunk | AIMessage | None = None
    timed_out = False
    for chunk in model.stream(prompt):
        merged = chunk if merged is None else merged + chunk  # type: ignore[operator]
        if isinstance(chunk.content, str) and chunk.content:
            shown = visible.feed(chunk.content)
            if shown:
                writer(TextChunk(shown))
        if time.time() >= deadline:
            timed_out = True
            break
    if merged is None:
        return AIMessage(content=""), timed_out
    if isinstance(merged, AIMessageChunk):
        return message_chunk_to_message(merged), timed_out  # type: ignore[return-value]
    return merged, timed_out


class _VisibleText:
    """The part of streamed text that is prose: everything before the first ``<`` (tool-call
    markup, parroted tool data) or ``{"`` (bare JSON calls); grounding cuts the answer there too.
    """

    def __init__(self) -> None:
        self.text = ""
        self.emitted = 0

    def feed(self, chunk: str) -> str:
        self.text += chunk
        stops = [i for i in (self.text.find("<"), self.text.find("```")) if i >= 0]
        json_start = re.search(r"\{\s*\"", self.text)
        if json_start:
            stops.append(json_start.start())
        safe = min(stops, default=len(self.text))
        if safe == len(self.text):  # a trailing "{" or "`" may start a JSON object or a fence
            safe = len(self.text.rstrip("{`"))
        out = self.text[self.emitted : safe] if safe > self.emitted else ""
        self.emitted = max(self.emitted, safe)
        return out


def _bind_tools(llm: BaseChatModel) -> Runnable:
    try:
        return llm.bind_tools(tool_schemas())
    except NotImplementedError:  # tools then come back as text, which plan parses anyway
        return llm


def _step(
    prompt_count: int,
    note: str | None,
    reply: AIMessage,
    parse: ReplyParse | None,
    decision: Decision,
    started: float,
) -> dict[str, Any]:
    """A model step as kept in state; ``respond`` rebuilds the prompt from ``prompt_count``."""
    return {
        "prompt_count": prompt_count,
        "note": note,
        "raw_output": reply.text,
        "raw_tool_calls": parse.raw_tool_calls if parse else [],
        "parsed_calls": [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in decision.calls
        ],
        "parse_class": parse.parse_class if parse else "invalid",
        "parse_source": parse.source if parse else "none",
        "problems": decision.problems,
        "decision": decision.kind,
        "model_ms": round((time.perf_counter() - started) * 1000, 3),
        "ended_at": time.time(),
        "tool_calls": [],
    }


def _tool_record(message: ToolMessage, call: Mapping[str, Any]) -> ToolCallRecord:
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
        attempts = [
            ToolAttempt(**{**a, "hits": [HitRecord(**h) for h in a["hits"]]})
            for a in artifact["attempts"]
        ]
    return ToolCallRecord(
        call_id=str(message.tool_call_id),
        name=str(call.get("name") or message.name or ""),
        arguments=dict(call.get("args", {})),
        attempts=attempts,
    )


def _tool_call_from_dict(data: Mapping[str, Any]) -> ToolCallRecord:
    return ToolCallRecord(
        call_id=data["call_id"],
        name=data["name"],
        arguments=data["arguments"],
        attempts=[
            ToolAttempt(**{**a, "hits": [HitRecord(**h) for h in a["hits"]]})
            for a in data["attempts"]
        ],
        ndcg_at_10=data.get("ndcg_at_10"),
    )


def _openai_call(call: Mapping[str, Any]) -> dict[str, Any]:
    args = call.get("args")
    return {
        "id": call.get("id") or "",
        "type": "function",
        "function": {
            "name": call.get("name") or "",
            "arguments": args if isinstance(args, str) else json.dumps(args or {}),
        },
    }


def _close_interrupted_calls(messages: Sequence[AnyMessage]) -> list[AIMessage]:
    """Replacements for assistant messages whose tool calls never got results.

    A turn interrupted mid-tools (Ctrl-C, a crash) leaves such calls in the history, and
    OpenAI-compatible servers refuse a history with unanswered calls; the replacement (same
    id, so it stays in place) keeps only the calls that were answered.
    """
    answered = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
    fixed = []
    for message in messages:
        if isinstance(message, AIMessage) and message.tool_calls:
            kept = [c for c in message.tool_calls if c["id"] in answered]
            if len(kept) != len(message.tool_calls):
                content = message.content or "(interrupted before the search finished)"
                fixed.append(AIMessage(content=content, tool_calls=kept, id=message.id))
    return fixed


def _is_answer(message: AnyMessage) -> bool:
    return isinstance(message, AIMessage) and not message.tool_calls


def _new_id() -> str:
    return uuid.uuid4().hex


def _iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


def _one_line(error: BaseException) -> str:
    return (" ".join(str(error).split()) or type(error).__name__)[:300]
