"""What the plan node makes of a model reply: run its calls, search anyway, or answer.

Why apart from ``plan``: this is the policy's contract with the graph, the part RL depends
on. A usable call runs, with the state's filters (the state wins over the call:
``agent.conversation.call_constraints``) and every overridden filter noted, since the reward
charges it; a filter the shopper did say is absorbed into the constraints. No usable call, a
model error or a slow model on the turn's first search: the graph searches the request's
words, so every request searches. After a search, a reply without calls is the answer.
"""

from __future__ import annotations

from agent.conversation.call_constraints import absorb_call, apply_to_call
from agent.conversation.deps import AgentContext
from agent.conversation.search_calls import (
    Decision,
    ReplyParse,
    graph_call,
    overridden,
    shares_words,
    usable,
)
from agent.conversation.state import AgentState
from agent.protocol.tool_calls import ParsedToolCall
from agent.protocol.tool_schemas import SEARCH_CONCEPTS, SEARCH_PRODUCTS

_SEARCHES = (SEARCH_PRODUCTS, SEARCH_CONCEPTS)


def decide(
    state: AgentState,
    ctx: AgentContext,
    parse: ReplyParse | None,
    budget_left: int,
    *,
    timed_out: bool,
    failure: str | None,
) -> Decision:
    """The decision for one reply (``parse`` is ``None`` when the model failed: ``failure``)."""
    active = state.active
    problems = list(parse.problems) if parse is not None else [f"model error: {failure}"]
    found = [c for c in (parse.calls if parse is not None else []) if usable(c)]
    if ctx.prose == "composed":
        found = [c for c in found if c.name == SEARCH_PRODUCTS]
    if timed_out:
        problems.append("the model ran out of time")
    if found and budget_left > 0 and not timed_out:
        return _run_calls(state, ctx, found, budget_left, problems)
    if not state.rounds:
        # No usable call (a small model often chats instead of searching), a model error or
        # a slow model: the graph searches the request's words, so every request searches.
        call = graph_call(active, f"call_t{state.turn}_fallback", ctx.deps.toolbox.respell)
        return Decision("fallback_search", [call], problems)
    if timed_out:
        return Decision("timeout", [], problems, "timeout")
    text = parse.content.strip() if parse is not None else ""
    stop = "answered" if budget_left > 0 else "budget"
    return Decision("answer", [], problems, stop, text)


def _run_calls(
    state: AgentState,
    ctx: AgentContext,
    found: list[ParsedToolCall],
    budget_left: int,
    problems: list[str],
) -> Decision:
    """The model's usable calls, within the budget, with the state's filters applied."""
    active = state.active
    if len(found) > budget_left:
        problems.append(f"over budget: {len(found) - budget_left} call(s) dropped")
    state_after = active
    calls: list[ParsedToolCall] = []
    for call in found[:budget_left]:
        if call.name in _SEARCHES:
            state_after, notes = absorb_call(
                state_after, call.arguments, state.shopper_words(), ctx.facets()
            )
            problems.extend(notes)
    for call in found[:budget_left]:
        if call.name in _SEARCHES:
            arguments = apply_to_call(call.arguments, state_after)
            problems.extend(overridden(call.arguments, arguments))
            if (
                ctx.prose == "composed"
                and call.name == SEARCH_PRODUCTS
                and not shares_words(str(arguments.get("query") or ""), state_after)
            ):
                problems.append(
                    f"query {arguments.get('query')!r} shares no word with the request: "
                    "searched the request's words instead"
                )
                arguments = apply_to_call({"query": state_after.query()}, state_after)
            call = ParsedToolCall(call.name, arguments, call.id)
        calls.append(call)
    changed = state_after if state_after != active else None
    return Decision("tool_calls", calls, problems, constraints=changed)
