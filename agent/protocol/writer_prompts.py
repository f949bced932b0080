"""The prompts a query writer answers: one system line and the shopper's words, one tool.

``shopagent eval`` (the policy, concepts and direct strategies), ``shopagent collect`` and the
RL datasets all build their prompts here, so what is trained is what is measured. A writer is
any callable from prompts to reply texts (``QueryWriter``): the local model in process
(``agent.runtime.query_writer``) or a fake in tests.

Two prompt styles for ``search_products`` (a strategy's ``WriterSpec`` in the registry,
``agent.protocol.strategies``, picks its tool and style):

- ``rewrite`` (strategy ``policy``): the shopper's words; the model writes the whole query.
- ``expand`` (strategy ``expand``): the shopper's words in the catalog's spelling (typos,
  run-together words and measures fixed by the search system, ``tools.search.respelling``) and
  candidate words from the products nearest in meaning (``tools.search.expand_hints``); the
  model is asked to copy the request as ``query`` and pick words for ``add_terms`` (searched
  at a lower weight). Copying the request alone is the ``spelled`` baseline.

``strategy_prompt`` is the one place both are built, for ``shopagent eval`` and
``shopagent collect`` alike: the hints are computed from the live indexes.

A third style reads a whole conversation (``conversation``, ``build_conversation_prompt``):
the shopper's recent messages, the last search the chat ran and its constraints in one line
(``ConversationView``); the model writes the query words for what the shopper wants now
(filters stay the graph's). The chat builds the view from its state
(``agent.conversation.writer``); ``shopagent eval run --sessions``, session training data
and the chat all read the prompt from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from agent.protocol.control_tokens import strip_control_tokens
from agent.protocol.strategies import EXPAND, REWRITE, STRATEGIES
from agent.protocol.tool_schemas import (
    SEARCH_CONCEPTS,
    SEARCH_PRODUCTS,
    SEARCH_TITLES,
    schema_for,
)
from tools.search.expand_hints import ExpandHints

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
    "You help shoppers find products. Call search_products with the shopper's request as "
    "query, and put the candidate word that best fits the request in add_terms."
)
#: One worked example turn of the expand action, before the shopper's request: the tools
#: template's own example only copies the query, and a 135M model does not use an argument
#: it has never seen used. It copies the request and adds the first candidate word.
EXPAND_EXAMPLE: tuple[Message, ...] = (
    {
        "role": "user",
        "content": "wireless headphones\nCandidate words: bluetooth, ear, sony, noise, black",
    },
    {
        "role": "assistant",
        "content": (
            '<tool_call>{"name": "search_products", "arguments": {"query": "wireless headphones", '
            '"add_terms": ["bluetooth"]}}</tool_call>'
        ),
    },
)


#: The conversation prompt style (not a strategy's: the chat and session runs use it).
CONVERSATION = "conversation"
CONVERSATION_SYSTEM_PROMPT = (
    "You help shoppers find products. Read the shopper's messages and call search_products "
    "with the keywords of the product they want now and the details they asked for: no "
    "greetings, no chat, no earlier product they gave up."
)
#: Messages of the conversation the prompt shows, the current one last: the product and
#: its details are rarely further back, and a 135M model has little context to spare.
CONVERSATION_MESSAGES = 4
#: Characters of one message the prompt keeps (a pasted essay must not fill the context).
MESSAGE_CHARS = 300
#: One worked turn: the call's format, and that the product comes from an earlier message.
CONVERSATION_EXAMPLE: tuple[Message, ...] = (
    {
        "role": "user",
        "content": (
            "Shopper: hi there, do you have ceiling fans?\n"
            "Shopper: for my porch, with a light please\n"
            "Last search: ceiling fans"
        ),
    },
    {
        "role": "assistant",
        "content": (
            '<tool_call>{"name": "search_products", "arguments": {"query": "porch ceiling fan '
            'with light"}}</tool_call>'
        ),
    },
)


@dataclass(frozen=True, slots=True)
class ConversationView:
    """What the writer reads of a conversation.

    ``messages``: the shopper's messages, oldest first, the current one last; ``last_search``:
    the query of the search the chat ran last ("" before the first); ``constraints``: what the
    chat keeps of the request, one line (``Constraints.describe``).
    """

    messages: tuple[str, ...]
    last_search: str = ""
    constraints: str = ""


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


def expand_user_text(hints: ExpandHints) -> str:
    """The request in the catalog's spelling, then the candidate words on their own line."""
    listed = ", ".join(hints.words) if hints.words else "(none)"
    return f"{hints.text}\nCandidate words: {listed}"


def build_expand_prompt(hints: ExpandHints) -> Prompt:
    """The ``expand`` prompt: the worked example, then the request with its hints."""
    return Prompt(
        messages=(
            {"role": "system", "content": EXPAND_SYSTEM_PROMPT},
            *EXPAND_EXAMPLE,
            {"role": "user", "content": expand_user_text(hints)},
        ),
        tools=(schema_for(SEARCH_PRODUCTS),),
    )


def conversation_user_text(view: ConversationView) -> str:
    """The view as the user turn: ``Shopper:`` lines, then the last search and the filters.
    Shopper text is data: chat-template tokens are taken out and each line is one line."""

    def line(text: str) -> str:
        return " ".join(strip_control_tokens(str(text)).split())[:MESSAGE_CHARS]

    lines = [f"Shopper: {line(m)}" for m in view.messages[-CONVERSATION_MESSAGES:] if line(m)]
    if view.last_search.strip():
        lines.append(f"Last search: {line(view.last_search)}")
    if view.constraints.strip():
        lines.append(f"Keeping: {line(view.constraints)}")
    return "\n".join(lines)


def build_conversation_prompt(view: ConversationView) -> Prompt:
    """The ``conversation`` prompt: the worked example, then the conversation's view."""
    return Prompt(
        messages=(
            {"role": "system", "content": CONVERSATION_SYSTEM_PROMPT},
            *CONVERSATION_EXAMPLE,
            {"role": "user", "content": conversation_user_text(view)},
        ),
        tools=(schema_for(SEARCH_PRODUCTS),),
    )


@runtime_checkable
class HintSource(Protocol):
    """What the expand prompt needs from the search: the retrieval service
    (``tools.search_tools.SearchToolbox.expand_hints``) has it."""

    def expand_hints(self, query_text: str, *, fallback: bool = False) -> ExpandHints: ...


def styled_prompt(
    tool: str,
    style: str,
    query_text: str,
    backends: object | None = None,
    *,
    fallback: bool = False,
) -> Prompt:
    """The prompt of one style for one tool.

    ``backends`` is the search toolbox (``tools.search_tools.SearchToolbox``, a ``HintSource``),
    read only by the expand prompt, for its hints: the request respelled by the embedded
    index's vocabulary and candidate words from the concept index (RM3 feedback words without
    one); a toolbox on an index without term statistics (Elasticsearch) cannot give them.
    ``fallback`` (``tools.search.expand_hints``): a concept index that fails (still building)
    gives feedback words instead of an error -- for the chat, never for evals and collection.
    """
    if style == REWRITE:
        return build_prompt(tool, query_text)
    if style != EXPAND or tool != SEARCH_PRODUCTS:
        raise ValueError(f"no {style!r} prompt for {tool}")
    if not isinstance(backends, HintSource):
        raise ValueError(
            "the expand prompt needs the embedded tantivy index for its candidate words"
        )
    return build_expand_prompt(backends.expand_hints(query_text, fallback=fallback))


def strategy_prompt(strategy: str, query_text: str, backends: object | None = None) -> Prompt:
    """The prompt a strategy gives its writer (its ``WriterSpec`` in
    ``agent.protocol.strategies``; ``backends`` as in ``styled_prompt``)."""
    spec = STRATEGIES.get(strategy)
    if spec is None or spec.writer is None:
        raise ValueError(f"no writer prompt for strategy {strategy!r}")
    return styled_prompt(spec.writer.tool, spec.writer.style, query_text, backends)
