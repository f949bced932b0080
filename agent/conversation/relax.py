"""Zero results: which constraint to drop next, one at a time, so the reply can say which.

The order goes from what a shopper gives up most easily to what they give up least: the
category (often a guess from their words), then the brand, then the price limits. Exclusions
("not HP", "without cable") are never dropped: showing what the shopper ruled out is worse
than showing nothing. Each step keeps the previous drops, so the last step is the bare
product words.
"""

from __future__ import annotations

from dataclasses import replace

from agent.conversation.constraints import Constraints, describe_price


def next_relaxation(active: Constraints) -> tuple[str, Constraints] | None:
    """The label of the next constraint to drop and the constraints without it, or ``None``
    when nothing is left to drop."""
    if active.category:
        return f"category {active.category}", replace(active, category=None)
    if active.brands:
        return f"brand {' or '.join(active.brands)}", replace(active, brands=())
    if active.min_price is not None or active.max_price is not None:
        label = f"the price limit ({describe_price(active.min_price, active.max_price)})"
        return label, replace(active, min_price=None, max_price=None)
    return None
