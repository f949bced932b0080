"""What the turn searches next when its searches kept nothing: the recovery ladder.

Why shared: the router after ``observe`` must know whether a recovery search is left (go
back to ``plan``) or not (answer), and ``plan`` must make that very search; one pure function
of the state answers both. The ladder: the request's own words (when the model's query found
nothing), then the concept index (what the words mean: "photography" finds cameras), then
one constraint dropped at a time (``agent.conversation.relax``), up to ``max_relaxations``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agent.conversation.call_constraints import apply_to_call
from agent.conversation.constraints import Constraints
from agent.conversation.deps import AgentLimits
from agent.conversation.relax import next_relaxation
from agent.conversation.search_calls import Decision, graph_call
from agent.conversation.state import AgentState
from agent.protocol.tool_calls import ParsedToolCall
from agent.protocol.tool_schemas import SEARCH_CONCEPTS


@dataclass(frozen=True, slots=True)
class Recovery:
    """A search the graph makes itself, and for a relaxed one, what it dropped."""

    decision: Decision
    #: The constraints without the dropped one (``None`` unless this is a relaxation).
    loosened: Constraints | None = None
    label: str = ""


def next_recovery(
    state: AgentState, limits: AgentLimits, respell: Callable[[str], str]
) -> Recovery | None:
    """The next recovery search, or ``None`` when the turn kept products (or has never
    searched), or every rung has been tried (``respell``: the graph's words in the catalog's
    spelling, ``search_calls.graph_call``)."""
    if not state.rounds or state.turn_product_ids:
        return None
    active = state.active
    # the request's words, as written or in the catalog's spelling (the graph's own searches)
    words = {active.query().lower(), respell(active.query()).lower()}
    searched_words = any(
        s.decision in ("fallback_search", "relax") or any(s.searched_query(w) for w in words)
        for s in state.steps
    )
    if not searched_words:
        # the model's call found nothing (or failed): the request's own words first
        call = graph_call(active, f"call_t{state.turn}_words", respell)
        return Recovery(Decision("fallback_search", [call], ["the model's call found nothing"]))
    if not any(s.called(SEARCH_CONCEPTS) for s in state.steps):
        # no product has these words: the concept index may know what they mean
        # ("photography" -> cameras); while it is missing or building, the tool falls back
        # to the keyword index on its own
        concepts = apply_to_call({"concepts": [active.query()]}, active)
        call = ParsedToolCall(SEARCH_CONCEPTS, concepts, f"call_t{state.turn}_concepts")
        note = "no keyword match: searched concepts"
        return Recovery(Decision("concepts_search", [call], [note]))
    if len(state.relaxed) < limits.max_relaxations:
        step = next_relaxation(active)
        if step is not None:
            label, loosened = step
            call = graph_call(loosened, f"call_t{state.turn}r{len(state.relaxed)}", respell)
            decision = Decision("relax", [call], [f"nothing matched: dropped {label}"])
            return Recovery(decision, loosened, label)
    return None
