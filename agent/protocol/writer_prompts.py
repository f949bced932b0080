"""The prompts a query writer answers: one system line and the shopper's words, one tool.

``shopagent eval`` (the policy, concepts and direct strategies), ``shopagent collect`` and the
RL datasets all build their prompts here, so what is trained is what is measured. A writer is
any callable from prompts to reply texts (``QueryWriter``): the local model in process
(``agent.runtime.query_writer``) or a fake in tests.

Two prompt styles for ``search_products`` (a strategy name picks one, ``STRATEGY_STYLES``):

- ``rewrite`` (strategy ``policy``): the shopper's words; the model writes the whole query.
- ``expand`` (strategy ``expand``): the shopper's words plus candidate words taken from the
  top raw results (RM3 feedback words, ``tools.search.prf``); the model is asked to copy the
  shopper's words as ``query`` and may pick words for ``add_terms`` (searched at a lower
  weight) and correct typos with ``fix``. Copying alone is exactly the raw search.

``strategy_prompt`` is the one place both are built, for ``shopagent eval`` and
``shopagent collect`` alike: the candidates are computed from the live lexical index.
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
from tools.search.prf import FeedbackIndex, RelevanceModel
from tools.search.request import SearchRequest

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


EXPAND_SYSTEM_PROMPT = (
    "You help shoppers find products. Call search_products with the shopper's words as "
    "query. Put up to 3 candidate words that fit the request in add_terms, and fix "
    "misspelled words with fix."
)
#: Candidate words shown in an ``expand`` prompt.
CANDIDATES = 8
#: One worked example turn of the expand action, before the shopper's request: the tools
#: template's own example only copies the query, and a 135M model does not use an argument
#: it has never seen used. It adds one candidate and fixes a typo; a ``fix`` key that is not
#: in the real request is ignored by the search, so copying the example costs nothing there.
EXPAND_EXAMPLE: tuple[Message, ...] = (
    {
        "role": "user",
        "content": "wireles headphones\nCandidate words: bluetooth, ear, sony, noise, black",
    },
    {
        "role": "assistant",
        "content": (
            '<tool_call>{"name": "search_products", "arguments": {"query": "wireles headphones", '
            '"add_terms": ["bluetooth"], "fix": {"wireles": "wireless"}}}</tool_call>'
        ),
    },
)
#: Strategy -> (tool, prompt style): what ``shopagent eval`` and ``collect`` mean by a name.
STRATEGY_STYLES: dict[str, tuple[str, str]] = {
    "policy": (SEARCH_PRODUCTS, "rewrite"),
    "expand": (SEARCH_PRODUCTS, "expand"),
    "concepts": (SEARCH_CONCEPTS, "rewrite"),
    "direct": (SEARCH_TITLES, "rewrite"),
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


def build_expand_prompt(query_text: str, candidates: Sequence[str]) -> Prompt:
    """The ``expand`` prompt: the worked example, then the shopper's words and, on their own
    line, the candidate words."""
    listed = ", ".join(candidates) if candidates else "(none)"
    return Prompt(
        messages=(
            {"role": "system", "content": EXPAND_SYSTEM_PROMPT},
            *EXPAND_EXAMPLE,
            {"role": "user", "content": f"{query_text}\nCandidate words: {listed}"},
        ),
        tools=(schema_for(SEARCH_PRODUCTS),),
    )


def candidate_words(index: FeedbackIndex, query_text: str, limit: int = CANDIDATES) -> list[str]:
    """Feedback words from the raw search's top products, best first (``tools.search.prf``)."""
    return RelevanceModel(index).candidate_words(SearchRequest(query_text), limit)


def styled_prompt(
    tool: str, style: str, query_text: str, index: FeedbackIndex | None = None
) -> Prompt:
    """The prompt of one style for one tool; ``expand`` needs the lexical index."""
    if style == "rewrite":
        return build_prompt(tool, query_text)
    if style != "expand" or tool != SEARCH_PRODUCTS:
        raise ValueError(f"no {style!r} prompt for {tool}")
    if index is None or not isinstance(index, FeedbackIndex):
        raise ValueError(
            "the expand prompt needs the embedded tantivy index for its candidate words"
        )
    return build_expand_prompt(query_text, candidate_words(index, query_text))


def strategy_prompt(strategy: str, query_text: str, index: FeedbackIndex | None = None) -> Prompt:
    """The prompt a strategy gives its writer (``STRATEGY_STYLES``)."""
    if strategy not in STRATEGY_STYLES:
        raise ValueError(f"no writer prompt for strategy {strategy!r}")
    tool, style = STRATEGY_STYLES[strategy]
    return styled_prompt(tool, style, query_text, index)
