"""``plan``: the search this turn makes next, written by the model or by the graph.

Why the model writes it: the query is the model's job (with composed prose the embedded
policy sees the RL writer prompt, ``agent.conversation.writer``; with model prose a capable
model sees the conversation and all tools). Why the graph sometimes writes it instead: a
search that kept nothing gets the recovery ladder (``agent.conversation.recovery``), and
words the model already wrote a query for in this conversation ("only Logitech" and
"cheaper" change filters, not words) reuse that query at no model time. What becomes of the
model's reply is ``agent.conversation.nodes.decide``.
"""

from __future__ import annotations

import time
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage
from langchain_core.runnables import Runnable

from agent.conversation.call_constraints import apply_to_call
from agent.conversation.deps import AgentContext
from agent.conversation.model_io import generate, new_message_id, parse_reply
from agent.conversation.nodes.decide import decide
from agent.conversation.prompts import BUDGET_NOTE, build_prompt
from agent.conversation.recovery import next_recovery
from agent.conversation.search_calls import Decision, ReplyParse, call_message, graph_call
from agent.conversation.state import AgentState
from agent.conversation.steps import graph_step, model_step
from agent.conversation.writer import conversation_view, writer_messages
from agent.protocol.tool_calls import ParsedToolCall
from agent.protocol.tool_schemas import SEARCH_PRODUCTS
from tools.errors import one_line

#: Seconds of the turn kept for the graph's own search when the model is slow.
SEARCH_RESERVE_S = 3.0


def plan(state: AgentState, ctx: AgentContext) -> dict[str, Any]:
    if time.time() >= state.turn_deadline:
        return {"stop_reason": "timeout"}
    recovery = next_recovery(state, ctx.limits, ctx.deps.toolbox.respell)
    if recovery is not None:
        update = graph_search(state, recovery.decision)
        if recovery.loosened is not None:
            update["active"] = recovery.loosened
            update["relaxed"] = [*state.relaxed, recovery.label]
        return update
    active = state.active
    if ctx.prose == "composed" and ctx.deps.query_author == "graph":
        call = graph_call(
            active, f"call_t{state.turn}s{len(state.steps)}_graph", ctx.deps.toolbox.respell
        )
        return graph_search(state, Decision("graph_query", [call], ["no model: the graph's words"]))
    reused = state.written_queries.get(active.query())
    if ctx.prose == "composed" and reused and not state.rounds:
        # the same words as an earlier turn ("only Logitech", "cheaper" change filters,
        # not words): the model's query for them again, at no model time
        call = ParsedToolCall(
            SEARCH_PRODUCTS,
            apply_to_call({"query": reused}, active),
            f"call_t{state.turn}_reused",
        )
        note = f"reused the model's query {reused!r} for {active.query()!r}"
        return graph_search(state, Decision("reused_query", [call], [note]))
    return ask_model(state, ctx)


def graph_search(state: AgentState, decision: Decision) -> dict[str, Any]:
    """A search the graph makes itself: recorded as a step, sent as a call message."""
    step = graph_step(len(state.messages), decision)
    return {"steps": [*state.steps, step], "messages": [call_message("", decision.calls)]}


def ask_model(state: AgentState, ctx: AgentContext) -> dict[str, Any]:
    """One model step: the prompt, the streamed reply, the decision, the state update."""
    budget_left = ctx.limits.max_tool_calls - state.tool_calls_used
    active = state.active
    prompt, model, show = _prompt(state, ctx, budget_left)
    started = time.perf_counter()
    deadline = state.turn_deadline
    if not state.rounds and deadline - time.time() > 2 * SEARCH_RESERVE_S:
        deadline -= SEARCH_RESERVE_S  # keep time to search the shopper's words
    call_prefix = f"call_t{state.turn}s{len(state.steps)}"
    try:
        reply, timed_out = generate(model, prompt, deadline, show=show)
        parse: ReplyParse | None = parse_reply(reply, id_prefix=call_prefix)
        failure = None
    except Exception as error:  # the model server is down or refused: search anyway
        reply, timed_out, parse, failure = AIMessage(""), False, None, one_line(error)
    decision = decide(state, ctx, parse, budget_left, timed_out=timed_out, failure=failure)
    step = model_step(len(state.messages), prompt, reply, parse, decision, started)
    update: dict[str, Any] = {
        "steps": [*state.steps, step],
        "stop_reason": decision.stop_reason,
        "answer_text": decision.answer_text,
    }
    if decision.constraints is not None:
        update["constraints"] = decision.constraints
        update["active"] = decision.constraints
    if decision.calls:
        if decision.kind == "tool_calls":
            update["tool_calls_used"] = state.tool_calls_used + len(decision.calls)
        content = parse.content if parse is not None and decision.kind == "tool_calls" else ""
        update["messages"] = [call_message(content, decision.calls)]
    elif decision.answer_text is not None:
        update["messages"] = [AIMessage(content=decision.answer_text, id=new_message_id())]
    if failure is not None:
        update["model_problem"] = failure
    if ctx.prose == "composed" and decision.kind == "tool_calls" and decision.calls:
        query = str(decision.calls[0].arguments.get("query") or "")
        update["written_queries"] = {**state.written_queries, active.query(): query}
    return update


def _prompt(
    state: AgentState, ctx: AgentContext, budget_left: int
) -> tuple[list[AnyMessage], Runnable, bool]:
    """What the model reads, which binding answers, and whether its prose is streamed."""
    active = state.active
    if ctx.prose == "composed":
        prompt = writer_messages(ctx.deps, active.query(), conversation_view(state))
        return prompt, ctx.query_writer, False
    note = f"The shopper wants: {active.describe()}." if not active.is_empty() else None
    if budget_left <= 0:
        note = f"{note}\n\n{BUDGET_NOTE}" if note else BUDGET_NOTE
    prompt = build_prompt(state.messages, ctx.limits.history_turns, note)
    return prompt, ctx.llm_with_tools if budget_left > 0 else ctx.llm, True
