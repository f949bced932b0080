"""``start``: a new shopper message becomes this turn's constraints, or a reference.

Why first: everything after it reads the conversation's ``Constraints`` (what to search, with
which filters), so the message is folded into them before any model runs
(``agent.conversation.constraints.update_constraints``). A message that points at the last
list ("the second one", "compare 1 and 3") is a reference (``agent.conversation.references``)
and never reaches the model; "more like 2" searches that product's words; a message that
leaves nothing to search for gets a question back, and one in another language a sentence
that the catalog is searched in English (``agent.conversation.languages``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from langchain_core.messages import HumanMessage

from agent.conversation.compose import compose_clarify, compose_in_english
from agent.conversation.constraints import Constraints, shown_prices, update_constraints
from agent.conversation.deps import AgentContext
from agent.conversation.languages import foreign_language
from agent.conversation.model_io import close_interrupted_calls
from agent.conversation.prices import without_prices, words_to_digits
from agent.conversation.products import ShownProduct
from agent.conversation.references import (
    ANSWERED_FROM_THE_LIST,
    Reference,
    find_reference,
    without_reference,
)
from agent.conversation.search_calls import content_words
from agent.conversation.state import AgentState, turn_defaults
from tools.catalog.product import price_or_none
from tools.search.facets import Facets


def start(state: AgentState, ctx: AgentContext) -> dict[str, Any]:
    now = time.time()
    text = next(m for m in reversed(state.messages) if isinstance(m, HumanMessage)).text
    constraints = state.constraints
    last_shown = state.last_shown
    update: dict[str, Any] = {
        **turn_defaults(),
        "messages": close_interrupted_calls(state.messages),
        "turn": state.turn + 1,
        "user_text": text,
        "turn_started_at": now,
        "turn_deadline": now + ctx.limits.turn_timeout_s,
    }
    # read without its price phrases: "wireless mouse, moins de 20 euros" is an English request
    language = foreign_language(without_prices(words_to_digits(text)))
    if language is not None:  # foreign keywords would find unrelated products: say so
        update["composed_text"] = compose_in_english(language)
        update["stop_reason"] = "clarify"
        update["changes"] = [f"not searched: written in {language}"]
        return {**update, "constraints": constraints, "active": constraints}
    reference = find_reference(text, len(last_shown))
    if reference is not None and reference.kind in ANSWERED_FROM_THE_LIST:
        return {**update, "reference": reference, "constraints": constraints, "active": constraints}
    if reference is not None:  # "more like 2": that product's words, the same filters
        position = reference.positions[0]
        if not 1 <= position <= len(last_shown):
            return {**update, "reference": Reference("details", (position,))}
        constraints, changes = like_shown(
            constraints, last_shown[position - 1], without_reference(text), ctx.facets()
        )
        update["reference"] = reference
        update["changes"] = [f"more like #{position}", *changes]
    else:
        change = update_constraints(constraints, text, ctx.facets(), shown_prices(last_shown))
        constraints = change.constraints
        update["changes"] = change.changes
        update["new_product"] = change.new_product
    update["constraints"] = constraints
    update["active"] = constraints
    if not constraints.searchable():
        update["composed_text"] = compose_clarify(constraints)
        update["stop_reason"] = "clarify"
    return update


def like_shown(
    constraints: Constraints, shown: ShownProduct, rest: str, facets: Facets
) -> tuple[Constraints, list[str]]:
    """The constraints of "more like #N" and of "like the second one but cheaper / in black":
    that product's words (without its model numbers: the same model is not "like" it), the
    filters already set, and what the rest of the message asks, read as ever
    (``update_constraints``). "cheaper" there means cheaper than that product, and the rest's
    words describe it ("in black": a feature), they do not name a new product."""
    words = [w for w in content_words(shown.title) if not any(c.isdigit() for c in w)][:6]
    base = replace(constraints, terms=tuple(words), attributes=())
    price = price_or_none(shown.price)
    change = update_constraints(base, rest, facets, (price,) if price is not None else ())
    refined = change.constraints
    if change.new_product:
        features = [*refined.terms, *refined.attributes]
        refined = replace(
            refined,
            terms=base.terms,
            product=base.product,
            attributes=tuple(dict.fromkeys(features)),
            min_price=refined.min_price if refined.min_price is not None else base.min_price,
            max_price=refined.max_price if refined.max_price is not None else base.max_price,
            category=refined.category or base.category,
            sort=refined.sort,
        )
        notes = [c for c in change.changes if not c.startswith(("new product:", "looking for"))]
        return refined, [*notes, f"with {', '.join(features)}"] if features else notes
    return refined, change.changes
