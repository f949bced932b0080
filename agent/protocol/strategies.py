"""The one registry of strategies: what each name ``shopagent eval`` / ``collect`` takes means.

A *strategy* is a way to answer a shopper's request with a ranking: with or without a model,
with a ``QueryWriter`` writing one tool call or a chat model driving the whole agent. Each is one
frozen ``StrategySpec`` in ``STRATEGIES`` (in the order the CLI lists them), saying

- whether it needs a model, and which: a writer (``writer``: the one tool its prompt offers and
  the prompt style, ``agent.protocol.writer_prompts.styled_prompt``) or the agent's chat model
  (``agent``);
- the toolbox retrieval path its search runs (``path``; for a writer, the path of its tool,
  ``TOOL_PATHS``; none for the agent, whose model picks its tools);
- which indexes it opens (``indexes``: the ``SearchToolbox`` attributes ``lexical`` /
  ``concepts``, what ``shopagent eval drift`` copies) and whether it reads the embedded tantivy
  index's term statistics (``term_statistics``: an Elasticsearch lexical backend has none);
- whether ``shopagent collect`` samples its writer (``collect``).

The eval suite (``evals.strategies``), collect (``rl.rollouts``), the writer prompts
(``agent.protocol.writer_prompts``), the tool path (``agent.protocol.tool_search``, through
``TOOL_PATHS``) and the CLI's help read it; the name tuples below are derived from it, never
written out again. ``tests/test_strategy_registry.py`` builds every strategy and checks that it
opens exactly the indexes declared here.

Strategies are not retrieval paths. The toolbox's paths (``tools.search_tools.RETRIEVAL_PATHS``:
lexical, concepts, dense, direct, hybrid) are how one request reaches the indexes; they sit in
layer 0, need no model and know nothing of prompts. A strategy is a layer above: it decides what
request is sent down one path (the shopper's words as is, expanded by RM3, respelled, or written
by a model from a prompt). Several strategies share one path (raw, rm3, fuzzy, spelled, copy,
policy and expand all run ``lexical``), and the names overlap only by accident (the ``concepts``
strategy runs the ``concepts`` path, but ``dual`` runs ``dense``; ``fused`` is ``copy``'s call
down the ``fused`` path, what the chat searches where the dataset's setting fuses concepts in).
So the paths stay one tuple in ``tools/`` and each spec here names the path it runs, checked
against that tuple.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.protocol.tool_schemas import GET_PRODUCT, SEARCH_CONCEPTS, SEARCH_PRODUCTS, SEARCH_TITLES
from tools.errors import BadInput
from tools.search_tools import INDEXES, RETRIEVAL_PATHS

#: The product lookup of ``get_product``: not a retrieval path, a fetch by id.
GET = "get"
#: Tool name -> the toolbox retrieval path its call runs (``agent.protocol.tool_search``).
TOOL_PATHS: dict[str, str] = {
    SEARCH_PRODUCTS: "lexical",
    SEARCH_CONCEPTS: "concepts",
    SEARCH_TITLES: "direct",
    GET_PRODUCT: GET,
}
#: The path a ``search_products`` call runs instead when asked to fuse the concept index's
#: dense ranking into its keyword ranking (the dataset's search setting,
#: ``tools.settings.search_choice``; the ``fused`` strategy).
FUSED_PATH = "fused"

#: The writer's prompt styles (``agent.protocol.writer_prompts.styled_prompt``): ``rewrite``
#: shows the shopper's words; ``expand`` (``search_products`` only) shows them respelled, with
#: candidate words from the indexes, and asks for ``query`` plus ``add_terms``.
REWRITE = "rewrite"
EXPAND = "expand"
PROMPT_STYLES = (REWRITE, EXPAND)


@dataclass(frozen=True, slots=True)
class WriterSpec:
    """How a ``QueryWriter`` is asked for a strategy's search: one tool, one prompt style."""

    tool: str
    style: str = REWRITE

    def __post_init__(self) -> None:
        if self.tool not in TOOL_PATHS or TOOL_PATHS[self.tool] == GET:
            raise ValueError(f"{self.tool!r} is not a search tool")
        if self.style not in PROMPT_STYLES:
            raise ValueError(f"unknown prompt style {self.style!r}; one of {PROMPT_STYLES}")
        if self.style == EXPAND and self.tool != SEARCH_PRODUCTS:
            raise ValueError(f"the expand prompt offers {SEARCH_PRODUCTS} only, not {self.tool}")

    @property
    def path(self) -> str:
        return TOOL_PATHS[self.tool]


@dataclass(frozen=True, slots=True)
class StrategySpec:
    """One strategy: exactly one of ``path`` (no model), ``writer`` or ``agent`` says how it
    searches (see the module docstring)."""

    name: str
    #: A few words for help texts.
    summary: str
    indexes: frozenset[str]
    #: The toolbox retrieval path a strategy without a model sends the request down.
    path: str | None = None
    writer: WriterSpec | None = None
    #: A chat model drives the agent's graph (``evals.strategies.AgentStrategy``).
    agent: bool = False
    term_statistics: bool = False
    collect: bool = False

    def __post_init__(self) -> None:
        if sum((self.path is not None, self.writer is not None, self.agent)) != 1:
            raise ValueError(f"{self.name}: give exactly one of path, writer or agent")
        if self.path is not None and self.path not in RETRIEVAL_PATHS:
            raise ValueError(f"{self.name}: unknown retrieval path {self.path!r}")
        if not self.indexes or not self.indexes <= set(INDEXES):
            raise ValueError(f"{self.name}: indexes must be some of {INDEXES}")
        if self.collect and self.writer is None:
            raise ValueError(f"{self.name}: collect samples a writer, and it has none")

    @property
    def needs_model(self) -> bool:
        return self.writer is not None or self.agent

    @property
    def retrieval_path(self) -> str | None:
        """The path its searches run: its own, its writer's tool's, or None (the agent)."""
        return self.writer.path if self.writer is not None else self.path


_LEXICAL = frozenset({"lexical"})
_CONCEPTS = frozenset({"concepts"})
_BOTH = frozenset({"lexical", "concepts"})

_SPECS = (
    StrategySpec("raw", "the shopper's text as is", _LEXICAL, path="lexical"),
    StrategySpec(
        "rm3", "raw plus RM3 feedback words", _LEXICAL, path="lexical", term_statistics=True
    ),
    StrategySpec(
        "fuzzy", "raw plus typo corrections", _LEXICAL, path="lexical", term_statistics=True
    ),
    StrategySpec(
        "spelled", "the request respelled", _LEXICAL, path="lexical", term_statistics=True
    ),
    StrategySpec(
        "copy",
        "a search_products call copying the respelled request",
        _LEXICAL,
        path="lexical",
        term_statistics=True,
    ),
    StrategySpec(
        "policy",
        "the model writes a keyword query",
        _LEXICAL,
        writer=WriterSpec(SEARCH_PRODUCTS),
        collect=True,
    ),
    StrategySpec(
        "expand",
        "the model keeps the shopper's words and adds candidate words",
        _BOTH,
        writer=WriterSpec(SEARCH_PRODUCTS, EXPAND),
        term_statistics=True,
        collect=True,
    ),
    StrategySpec(
        "concepts",
        "the model writes concepts",
        _CONCEPTS,
        writer=WriterSpec(SEARCH_CONCEPTS),
        collect=True,
    ),
    StrategySpec("dual", "the text embedded once", _CONCEPTS, path="dense"),
    StrategySpec(
        "direct", "the model imagines product titles", _CONCEPTS, writer=WriterSpec(SEARCH_TITLES)
    ),
    StrategySpec("hybrid", "RRF of raw and dual", _BOTH, path="hybrid"),
    StrategySpec(
        "fused",
        "copy with the concept index's dense ranking fused in (RRF)",
        _BOTH,
        path=FUSED_PATH,
        term_statistics=True,
    ),
    StrategySpec("agent", "the full agent with a chat model", _BOTH, agent=True),
)
STRATEGIES: dict[str, StrategySpec] = {spec.name: spec for spec in _SPECS}

#: Every strategy, in the CLI's order.
STRATEGY_NAMES = tuple(STRATEGIES)
#: The strategies that need a model (a writer or the agent's chat model).
MODEL_STRATEGIES = frozenset(s.name for s in _SPECS if s.needs_model)
#: The strategies whose search a ``QueryWriter`` writes (the agent has its own chat model).
WRITER_STRATEGIES = frozenset(s.name for s in _SPECS if s.writer is not None)
#: Retrieval without a model: what ``evals.perf.bench_eval`` times.
PLAIN_STRATEGIES = tuple(s.name for s in _SPECS if not s.needs_model)
#: What ``shopagent collect`` samples.
COLLECT_STRATEGIES = tuple(s.name for s in _SPECS if s.collect)


def strategy_spec(name: str) -> StrategySpec:
    """The registered strategy; an unknown name is a ``BadInput`` naming the choices."""
    if name not in STRATEGIES:
        raise BadInput(f"unknown strategy {name!r}; choose one of {list(STRATEGY_NAMES)}")
    return STRATEGIES[name]


def listed(names: Sequence[str], *, summaries: bool = False) -> str:
    """``("a", "b", "c")`` -> ``"a, b or c"`` (each with its summary in brackets when
    ``summaries``), for help texts."""
    items = [f"{n} ({STRATEGIES[n].summary})" if summaries else n for n in names]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"
