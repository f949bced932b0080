"""``respond``: the reply the shopper reads, the products they see, the episode logged.

Why one node ends every turn: whatever happened (an answer, a clarifying question, a
reference, a timeout), the shopper gets exactly one ``FinalAnswer`` and the log exactly one
record. Products are only ever those the tools returned, re-read from the catalog
(``agent.conversation.grounding``); the model's prose is shown only with ``prose="model"``
and when it passes the checks (``agent.conversation.prose_check``), else the reply is
composed from the results (``agent.conversation.compose``).
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langgraph.config import get_stream_writer

from agent.conversation.compose import compose_nothing, compose_results
from agent.conversation.deps import AgentContext
from agent.conversation.events import EpisodeRecorded, FinalAnswer, ProductsShown
from agent.conversation.grounding import ground_answer
from agent.conversation.model_io import is_answer, new_message_id
from agent.conversation.products import ShownProduct, renumber
from agent.conversation.prompts import fallback_answer
from agent.conversation.prose_check import prose_passes
from agent.conversation.record import episode_record
from agent.conversation.reread import CatalogReader
from agent.conversation.state import AgentState, TurnSummary
from tools.catalog.product import price_or_none
from tools.errors import one_line
from tools.search.price_order import sort_by_price


def respond(state: AgentState, ctx: AgentContext) -> dict[str, Any]:
    writer = get_stream_writer()
    stop_reason = state.stop_reason or "answered"
    if state.model_problem and stop_reason == "answered":
        stop_reason = "model_error"
    catalog = CatalogReader(ctx.deps.toolbox)
    violations: list[str] = []
    written_by = "composed"
    if state.composed_text is not None:
        text = state.composed_text
        products = catalog.reread(state.last_shown) if stop_reason == "reference" else []
    else:
        text, products, violations, written_by = _searched_reply(state, ctx, catalog, stop_reason)
    record = episode_record(
        state,
        ctx.deps,
        text=text,
        products=products,
        violations=violations,
        stop_reason=stop_reason,
        relaxed=state.relaxed,
    )
    log_error = None
    if ctx.deps.log is not None:
        try:
            ctx.deps.log.append(record)
        except OSError as error:
            log_error = f"trajectory not saved: {one_line(error)}"
    if products:
        writer(ProductsShown(products))
    writer(
        FinalAnswer(
            text=text,
            products=products,
            stop_reason=stop_reason,
            episode_id=record.episode_id,
            reward=record.reward.total,
            violations=violations,
            filters=state.active.describe() if state.composed_text is None else "",
            relaxed=list(state.relaxed),
            written_by=written_by,
        )
    )
    writer(EpisodeRecorded(record, log_error, follows(state)))
    last = state.messages[-1]
    answer = AIMessage(content=text, id=last.id if is_answer(last) else new_message_id())
    summary = TurnSummary(
        turn=state.turn,
        user_text=state.user_text,
        answer=text,
        products=products,
        episode_id=record.episode_id,
        stop_reason=stop_reason,
        filters=state.active.describe(),
    )
    update: dict[str, Any] = {
        "messages": [answer],
        "turns": [*state.turns, summary],
        "model_problem": None,
    }
    if products and stop_reason != "reference":
        update["last_shown"] = products
    return update


def _searched_reply(
    state: AgentState, ctx: AgentContext, catalog: CatalogReader, stop_reason: str
) -> tuple[str, list[ShownProduct], list[str], str]:
    """The reply to a turn that searched: its text, products, violations and who wrote it."""
    active = state.active
    grounded = ground_answer(
        state.answer_text or "",
        turn_ids=state.turn_product_ids,
        retrieved=state.retrieved,
        lookup=catalog.lookup,
        limit=ctx.limits.shown_products,
        shopper_text=state.shopper_words(),
        reported_totals={r.total for r in state.rounds},
    )
    violations = list(grounded.violations)
    passes = ctx.prose == "model" and prose_passes(
        state.answer_text or "", grounded.text, violations
    )
    if not passes and grounded.cited_ids:  # the list follows the reply the shopper reads
        grounded = ground_answer(
            "",
            turn_ids=state.turn_product_ids,
            retrieved=state.retrieved,
            lookup=catalog.lookup,
            limit=ctx.limits.shown_products,
        )
    allowed = [p for p in grounded.products if active.allows(p)]
    if not passes:
        # the composed reply names the order ("sorted by price, lowest first"): the list keeps
        # it even when it joins several searches (a model's prose keeps its own order)
        allowed = sort_by_price(allowed, active.sort, lambda p: price_or_none(p.price))
    products = renumber(allowed)
    written_by = "composed"
    if passes:
        text, written_by = grounded.text, "model"
    elif products:
        total = max((r.total for r in state.rounds), default=0)
        text = compose_results(
            active,
            products,
            total=max(total, len(products)),
            relaxed=state.relaxed,
            searched=searched_as(state),
        )
    elif stop_reason == "timeout" or (
        stop_reason in ("model_error", "budget") and not state.rounds
    ):
        text = fallback_answer(stop_reason, 0)
    else:
        raw = state.rounds[-1].raw if state.rounds else ()
        facets = [state.retrieved[i] for i in raw if i in state.retrieved]
        brands = [(v.name, v.count) for v in ctx.facets().brands[:5]]
        text = compose_nothing(active, relaxed=state.relaxed, facets=facets, catalog_brands=brands)
    if stop_reason == "timeout" and products:
        text = f"{fallback_answer('timeout', len(products))} {text}"
    if state.model_problem:
        text = f"The model is unavailable ({state.model_problem}); I searched your words. {text}"
    return text, products, violations, written_by


def searched_as(state: AgentState) -> str:
    """The one text query that found every kept product of the turn, or "" when the list came
    from several searches or one without a text query (then no single query describes it)."""
    queries = {q for r in state.rounds for q in r.queries}
    return queries.pop() if len(queries) == 1 else ""


def follows(state: AgentState) -> str | None:
    """How this turn follows the previous one (see ``EpisodeRecorded.follows``)."""
    if state.turn <= 1:
        return None
    if state.reference:
        return "reference"
    if state.new_product or "restart" in state.changes:
        return "new"
    return "refinement" if state.changes else "new"
