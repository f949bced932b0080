"""The prompts a query writer answers: one system line and the shopper's words, one tool.

``shopagent eval`` (the policy, concepts and direct strategies), ``shopagent collect`` and the
RL datasets all build their prompts here, so what is trained is what is measured. A writer is
any callable from prompts to reply texts (``QueryWriter``): the local model in process
(``agent.runtime.query_writer``) or a fake in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agent.protocol.tool_schemas import (
    SEARCH_CONCEPTS,
    SEARCH_PRODUCTS,
    SEARCH_TITLES,
    schema_for,
)

Message = Mapping[str, Any]

SYSTEM_PROMPTS: dict[str, str] = {
    SEARCH_PRODUCTS: (
        "You help shoppers find products. Call search_products with the keywords a product "
        "search engine needs for the shopper's request, and filters only when asked for."
    ),
    SEARCH_CONCEPTS: (
        "You help shoppers find products. Call search_concepts with short concepts "
        "(product type, features, use) that the right products match."
    ),
    SEARCH_TITLES: (
        "You help shoppers find products. Call search_titles with the titles of real "
        "products that would fit the shopper's request."
    ),
}


@dataclass(frozen=True, slots=True)
class Prompt:
    """One conversation for the writer, with the tools its chat template should show."""

    messages: tuple[Message, ...]
    tools: tuple[Mapping[str, Any], ...]


#: Prompts in, raw reply texts out (same order, same length).
QueryWriter = Callable[[Sequence[Prompt]], list[str]]


def build_prompt(tool: str, query_text: str) -> Prompt:
    """The writer's prompt for one request and the one tool it should call."""
    return Prompt(
        messages=(
            {"role": "system", "content": SYSTEM_PROMPTS[tool]},
            {"role": "user", "content": query_text},
        ),
        tools=(schema_for(tool),),
    )
