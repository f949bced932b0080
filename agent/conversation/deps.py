"""What the graph's nodes work with besides the state: limits, the search, the log, the model.

Why one place: a node's inputs are then the conversation (``AgentState``, checkpointed) and
this run-scoped context (``AgentContext``, never checkpointed), nothing else. The caller
builds ``AgentDeps`` (``ChatSession``, ``evals.strategies.AgentStrategy``); ``build_graph``
turns it into one ``AgentContext`` per compiled graph and hands it to every node, as
LangGraph's runtime context would (the context is bound when the graph is built rather than
passed to each ``stream`` call, so callers that only stream keep working unchanged).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import Runnable

from agent.conversation.model_io import bind_tools
from agent.protocol.tool_schemas import SEARCH_PRODUCTS, schema_for, tool_schemas
from agent.protocol.tool_search import SearchBackends
from agent.trajectory.log import TrajectoryLog
from tools.catalog.product import Product
from tools.errors import BadInput
from tools.search.expand_hints import ExpandHints
from tools.search.facets import Facets

#: Who writes the reply: the model (checked, shown only if it passes) or the graph, from the
#: results (``agent.conversation.compose``). See ``tools.settings.llm.LLMSettings.prose``.
ProseMode = Literal["model", "composed"]
#: The prompt the query model answers in composed mode (``agent.protocol.writer_prompts``):
#: ``conversation`` reads the shopper's recent messages, the others the graph's words.
WriterStyle = Literal["expand", "rewrite", "conversation"]
#: Who writes a composed-mode search: the model, or the graph alone (its constraint words:
#: the ``graph`` strategy of ``shopagent eval run --sessions``, what a search costs without
#: any model, and the baseline a writer's reward is measured against).
QueryAuthor = Literal["model", "graph"]


@dataclass(frozen=True, slots=True)
class AgentLimits:
    """Budgets that keep a turn bounded whatever the model does."""

    max_tool_calls: int = 3
    turn_timeout_s: float = 60.0
    #: Per tool call, capped by what is left of the turn.
    tool_timeout_s: float = 20.0
    results_per_search: int = 10
    #: Products listed in the final answer when the model cites none in particular.
    shown_products: int = 5
    #: Earlier turns kept in the prompt: a small model has little context to spare.
    history_turns: int = 4
    #: Description characters sent to the model per product.
    description_chars: int = 200
    #: Most tokens the model may spend on the step that writes the search. An expand call
    #: with a ``fix`` and a word was measured at about 50 tokens; a small model that chats
    #: instead would otherwise ramble for seconds.
    call_max_tokens: int = 96
    #: Searches the graph may add when nothing matched, each dropping one more constraint.
    max_relaxations: int = 3

    def __post_init__(self) -> None:
        if self.max_tool_calls < 1:
            raise BadInput("max_tool_calls must be at least 1")
        if self.turn_timeout_s <= 0 or self.tool_timeout_s <= 0:
            raise BadInput("timeouts must be positive")


class AgentToolbox(SearchBackends, Protocol):
    """What the agent needs from the search: the retrieval service,
    ``tools.search_tools.SearchToolbox``. The tools search through it
    (``agent.protocol.tool_search``), the writer prompt reads its hints, grounding and
    references re-read products by id, the constraints match its facets, and the chat's
    warm-up opens its indexes (``warm``) before the first turn needs them."""

    def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]: ...

    def get_from_concept_index(self, product_id: str) -> Product | None: ...

    def facets(self) -> Facets: ...

    def has_term_statistics(self) -> bool: ...

    def expand_hints(self, query_text: str, *, fallback: bool = False) -> ExpandHints: ...

    def respell(self, text: str) -> str:
        """``text`` in the catalog's spelling (typos, run-together words, measures)."""
        ...

    def warm(self) -> dict[str, str]:
        """Open and use once everything a first turn reads (the chat calls it while the
        shopper types); each store's name with ``ready`` or why it was skipped. Never raises."""
        ...


@dataclass(slots=True)
class AgentDeps:
    """What the caller gives the graph besides the model."""

    toolbox: AgentToolbox
    limits: AgentLimits = field(default_factory=AgentLimits)
    log: TrajectoryLog | None = None
    model_id: str = "unknown"
    model_checkpoint: str | None = None
    dataset: str = ""
    catalog_version: Callable[[], str | None] = lambda: None
    source: str = "chat"
    #: Who writes the reply (see ``ProseMode``); resolve ``[llm] prose`` before serving.
    prose: ProseMode = "composed"
    #: The catalog's brands and categories; by default read once from the toolbox.
    facets: Callable[[], Facets] | None = None
    #: The writer prompt of composed mode (``agent.protocol.writer_prompts``): ``expand``, the
    #: prompt the shipped policy is trained on, or ``rewrite`` (the model writes the query).
    writer_style: WriterStyle = "expand"
    #: Who writes the search in composed mode (see ``QueryAuthor``).
    query_author: QueryAuthor = "model"
    #: Whether ``search_products`` fuses the concept index's dense ranking into its keyword
    #: ranking (``agent.protocol.tool_search``): the dataset's measured search choice
    #: (``tools.settings.search_choice``), which the chat reads at start. Off: keywords only.
    fuse_concepts: bool = False


class FacetCache:
    """The catalog's facets, read once on first use (``AgentToolbox.facets``); empty when the
    index cannot be read, so a broken index never breaks a chat."""

    def __init__(self, toolbox: AgentToolbox) -> None:
        self.toolbox = toolbox
        self._facets: Facets | None = None

    def __call__(self) -> Facets:
        if self._facets is None:
            try:
                self._facets = self.toolbox.facets()
            except Exception:  # a missing or failing index: match no facet values
                self._facets = Facets()
        return self._facets


@dataclass(frozen=True, slots=True)
class AgentContext:
    """Everything a node reads besides the state, built once per compiled graph."""

    llm: BaseChatModel
    deps: AgentDeps
    facets: Callable[[], Facets]
    #: The model with every tool bound: what a capable model (``prose="model"``) answers.
    llm_with_tools: Runnable
    #: The model with ``search_products`` bound, demanded (``tool_choice``: in composed mode
    #: a reply that is not a search is of no use, and a server that honours it writes the
    #: call's start itself) and ``call_max_tokens``: the composed-mode query writer.
    query_writer: Runnable

    @classmethod
    def build(cls, llm: BaseChatModel, deps: AgentDeps) -> AgentContext:
        return cls(
            llm=llm,
            deps=deps,
            facets=deps.facets or FacetCache(deps.toolbox),
            llm_with_tools=bind_tools(llm, tool_schemas()),
            query_writer=bind_tools(
                llm, [schema_for(SEARCH_PRODUCTS)], tool_choice=SEARCH_PRODUCTS
            ).bind(max_tokens=deps.limits.call_max_tokens),
        )

    @property
    def limits(self) -> AgentLimits:
        return self.deps.limits

    @property
    def prose(self) -> ProseMode:
        return self.deps.prose
