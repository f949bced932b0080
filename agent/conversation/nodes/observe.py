"""``observe``: a round of tool results becomes what the turn found and kept.

Why a node of its own: the tools return whatever the backends matched; the shopper must see
only what respects the constraints. This node records each call (attempts, hits, NDCG@10
against the turn's judgments when it has them) into the step that made it, registers every
returned product in the conversation (``retrieved``), and keeps, in ranking order, the ids
that respect the constraints and, when any does, those that name the product type ("only
Logitech" keeps showing mice, not Logitech keyboards).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage

from agent.conversation.deps import AgentContext
from agent.conversation.episode_reward import judged_ndcg
from agent.conversation.state import AgentState, SearchRound
from agent.conversation.steps import tool_record
from agent.conversation.tool_node import artifact_products, artifact_total
from agent.trajectory.log import ToolCallRecord
from tools.catalog.product import Product


def observe(state: AgentState, ctx: AgentContext) -> dict[str, Any]:
    messages = state.messages
    last_ai = max(i for i, m in enumerate(messages) if isinstance(m, AIMessage))
    requested = {c["id"]: c for c in messages[last_ai].tool_calls}  # type: ignore[union-attr]
    active = state.active
    skip = similar_source(state)
    records: list[ToolCallRecord] = []
    found: dict[str, Product] = {}
    turn_ids = list(state.turn_product_ids)
    total = kept = 0
    raw: list[str] = []
    #: The text query of each call whose products are kept ("" for one without, e.g. concepts)
    queries: list[str] = []
    for message in messages[last_ai + 1 :]:
        if not isinstance(message, ToolMessage):
            continue
        call = requested.get(message.tool_call_id, {"name": message.name or "", "args": {}})
        record = tool_record(message, call)
        total += artifact_total(message)
        for product in artifact_products(message):
            found.setdefault(product.id, product)
            raw.append(product.id)
            if product.id == skip or not active.allows(product):
                continue
            kept += 1
            query = str(call["args"].get("query") or "")
            if query not in queries:
                queries.append(query)
            if product.id not in turn_ids:
                turn_ids.append(product.id)
        if state.judged and record.attempts:
            record.ndcg_at_10 = judged_ndcg([h.product_id for h in record.hits], state.judged)
        records.append(record)
    steps = list(state.steps)
    if steps:
        # wall time of the tools round: parallel calls overlap, so their sum would overstate it
        tools_wall_ms = (time.time() - steps[-1].ended_at) * 1000
        steps[-1] = replace(steps[-1], tool_calls=records, tools_wall_ms=round(tools_wall_ms, 3))
    typed = [i for i in turn_ids if active.names_product(found.get(i) or state.retrieved.get(i))]
    if typed:  # "only Logitech" keeps showing mice: the results that name the product
        turn_ids = typed
    update: dict[str, Any] = {
        "steps": steps,
        "retrieved": found,
        "turn_product_ids": turn_ids,
        "rounds": [*state.rounds, SearchRound(total, kept, tuple(raw), tuple(queries))],
    }
    if time.time() >= state.turn_deadline:
        update["stop_reason"] = "timeout"
    return update


def similar_source(state: AgentState) -> str | None:
    """The product a "more like 2" turn started from: never shown as similar to itself."""
    reference = state.reference
    if reference is None or reference.kind != "similar":
        return None
    position = reference.positions[0]
    shown = state.last_shown
    return shown[position - 1].id if 1 <= position <= len(shown) else None
