"""``refer``: "the second one", "compare 1 and 3" or "which of these is waterproof?", answered
from the catalog.

Why without the model or a search: the shopper points at the list on their screen, so the
answer is that product's details or a side-by-side table, re-read from the catalog
(``agent.conversation.reread``) and written by ``agent.conversation.compose``; a 135M model
would only get the facts wrong.
"""

from __future__ import annotations

import re
from typing import Any

from agent.conversation.compose import (
    compose_comparison,
    compose_details,
    compose_missing,
    compose_which,
)
from agent.conversation.deps import AgentContext
from agent.conversation.reread import CatalogReader
from agent.conversation.search_calls import content_words
from agent.conversation.state import AgentState
from tools.catalog.product import Product


def refer(state: AgentState, ctx: AgentContext) -> dict[str, Any]:
    reference = state.reference
    assert reference is not None  # the router sends only references here
    shown = state.last_shown
    valid = [p for p in reference.positions if 1 <= p <= len(shown)]
    missing = [p for p in reference.positions if p not in valid]
    catalog = CatalogReader(ctx.deps.toolbox)
    current = catalog.current([shown[position - 1] for position in valid])
    products: list[tuple[int, Product]] = [
        (position, product)
        for position, product in zip(valid, current, strict=True)
        if product is not None
    ]
    if missing or not products:
        text = compose_missing(missing or list(reference.positions), len(shown))
    elif reference.kind == "compare" and len(products) > 1:
        text = compose_comparison(products)
    elif reference.kind == "which":
        text = compose_which(products, question_words(state.user_text))
    else:
        asked = question_words(state.user_text)
        text = "\n\n".join(compose_details(pos, p, asked) for pos, p in products)
    return {"composed_text": text, "stop_reason": "reference"}


def question_words(text: str) -> list[str]:
    """What a reference asks about ("is the second one wireless?" -> ["wireless"])."""
    skip = {
        "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "tenth", "last", "number", "details", "detail", "about", "tell", "more", "compare",
        "option", "item", "pick", "result", "which", "these", "those", "ones",
    }  # fmt: skip
    return [
        w for w in content_words(re.sub(r"#?\d+\w*", " ", text)) if w not in skip and len(w) > 2
    ]
