"""The retrieval strategies the eval suite compares, behind one small protocol.

Without a model: ``raw`` (the shopper's text, as is, to the lexical index), ``rm3`` (raw
plus pseudo-relevance feedback words from its top results, ``tools.search.prf``), ``fuzzy``
(raw plus index-vocabulary typo corrections, ``tools.search.spelling``), ``spelled`` (the
request in the catalog's spelling, ``tools.search.respelling``: what the ``expand`` prompt
shows its model), ``copy`` (that respelled request as a ``search_products`` call copying it,
through the one tool-call path and so with its title match: what a policy that only copies
scores, so ``policy`` minus ``copy`` is the model's own share), ``fused`` (that same call
with the concept index's dense ranking fused in: what the chat's ``search_products`` runs where
the dataset's search setting says so, ``evals.choose_search``), ``dual`` (the text
embedded once, a plain dual encoder), ``hybrid`` (RRF of raw and dual). ``rm3`` and ``fuzzy``
are the baselines a trained policy has to beat: they expand the query without a model.
With a model writing the search: ``policy`` (a ``search_products`` call: keywords and
filters for the lexical index), ``expand`` (the same call from a prompt that shows candidate
words from the top raw results; the model keeps the shopper's words and adds some),
``concepts`` (a ``search_concepts`` call: concepts for
Chroma), ``direct`` (a ``search_titles`` call: imagined product titles matched to real ones).
``agent`` runs the full agent graph (``AgentStrategy``) with a chat model.

Which strategies exist, what each needs and reads, and its writer's tool and prompt style are
declared once, in the registry (``agent.protocol.strategies``); the name tuples here are its.

Model strategies talk to a ``QueryWriter``: prompts in, raw reply texts out, one batch at a
time. The local model sits behind one (``LocalQueryWriter``); tests pass a fake. A reply is
parsed by the project's tool-call parser, and its parse class (valid / repaired / invalid)
is kept in the trace. A reply with no usable call searches nothing and scores 0: the eval
measures what the model wrote, and the validity rate says how often that was unusable.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from agent.protocol.strategies import MODEL_STRATEGIES as MODEL_STRATEGIES
from agent.protocol.strategies import PLAIN_STRATEGIES as PLAIN_STRATEGIES
from agent.protocol.strategies import REWRITE, strategy_spec
from agent.protocol.strategies import STRATEGY_NAMES as STRATEGY_NAMES
from agent.protocol.strategies import WRITER_STRATEGIES as WRITER_STRATEGIES
from agent.protocol.tool_calls import parse_tool_calls
from agent.protocol.tool_schemas import SEARCH_PRODUCTS, schema_for
from agent.protocol.tool_search import plan_tool_search, search_tool_call
from agent.protocol.writer_prompts import QueryWriter, styled_prompt
from tools.catalog.product import Product
from tools.errors import BackendError, BadInput
from tools.search.prf import FeedbackIndex, RelevanceModel, RM3Config
from tools.search.request import SearchRequest
from tools.search.respelling import respell
from tools.search.results import SearchResults, ranked
from tools.search.spelling import VocabularyIndex, with_corrections
from tools.search_tools import SearchToolbox

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from agent.conversation.state import AgentLimits
    from agent.trajectory.log import EpisodeRecord


@dataclass(frozen=True, slots=True)
class StrategyTrace:
    """What happened for one query: what was searched, what the model said, where time went.

    ``parse_class`` is None for strategies without a model. With batched generation,
    ``generation_ms`` is the batch's wall time divided by its size (the amortised cost).
    """

    query_text: str
    written: str = ""
    raw_output: str | None = None
    parse_class: str | None = None
    problems: tuple[str, ...] = ()
    generation_ms: float = 0.0
    search_ms: float = 0.0
    error: str | None = None

    @property
    def latency_ms(self) -> float:
        return self.generation_ms + self.search_ms

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = list(self.problems)
        data["latency_ms"] = self.latency_ms
        return data


Retrieved = tuple[SearchResults, StrategyTrace]


@runtime_checkable
class Strategy(Protocol):
    """``retrieve`` answers one query; ``indexes`` names what it reads ("lexical", "concepts")."""

    name: str
    indexes: frozenset[str]

    def retrieve(self, query_text: str, size: int) -> Retrieved: ...


@runtime_checkable
class BatchStrategy(Strategy, Protocol):
    """A strategy that is cheaper per query in batches (model generation)."""

    def retrieve_batch(self, query_texts: Sequence[str], size: int) -> list[Retrieved]: ...


def empty_results(backend: str, detail: dict[str, Any] | None = None) -> SearchResults:
    return SearchResults(hits=[], backend=backend, total=0, detail=detail or {})


# -- strategies without a model ---------------------------------------------------------------


@dataclass(slots=True)
class ToolboxStrategy:
    """The shopper's text sent to one of the toolbox's retrieval paths, as is or expanded.

    ``expand``, when given, turns the raw request into the expanded one without a model (its
    own searches included, e.g. RM3's feedback search); its time counts as search time. The
    trace's ``written`` shows the added words and their weights.
    """

    name: str
    tool: str
    indexes: frozenset[str]
    toolbox: SearchToolbox = field(repr=False)
    expand: Callable[[SearchRequest], SearchRequest] | None = field(default=None, repr=False)

    def request_for(self, query_text: str, size: int) -> SearchRequest:
        """What is searched for ``query_text`` (``evals.perf.bench_eval`` times it bare)."""
        request = SearchRequest(query_text, size=size)
        return request if self.expand is None else self.expand(request)

    def retrieve(self, query_text: str, size: int) -> Retrieved:
        started = time.perf_counter()
        request = self.request_for(query_text, size)
        results = self.toolbox.run(self.tool, request)
        added = " ".join(f"{word}^{weight:g}" for word, weight in request.expansions)
        trace = StrategyTrace(
            query_text,
            written=f"{request.text} + {added}" if added else request.text,
            search_ms=(time.perf_counter() - started) * 1000,
        )
        return results, trace


def toolbox_strategy(
    name: str,
    toolbox: SearchToolbox,
    expand: Callable[[SearchRequest], SearchRequest] | None = None,
) -> ToolboxStrategy:
    """The registered strategy's path and indexes (``agent.protocol.strategies``)."""
    spec = strategy_spec(name)
    if spec.path is None:
        raise BadInput(f"the {name!r} strategy is not a retrieval path without a model")
    return ToolboxStrategy(name, spec.path, spec.indexes, toolbox, expand)


def raw_strategy(toolbox: SearchToolbox) -> ToolboxStrategy:
    return toolbox_strategy("raw", toolbox)


def dual_strategy(toolbox: SearchToolbox) -> ToolboxStrategy:
    return toolbox_strategy("dual", toolbox)


def hybrid_strategy(toolbox: SearchToolbox) -> ToolboxStrategy:
    return toolbox_strategy("hybrid", toolbox)


def rm3_strategy(toolbox: SearchToolbox, config: RM3Config | None = None) -> ToolboxStrategy:
    """Raw plus RM3 feedback words (``tools.search.prf``; needs the embedded index's statistics)."""
    model = RelevanceModel(_statistics_index(toolbox, "rm3", FeedbackIndex), config)
    return toolbox_strategy("rm3", toolbox, model.expand)


def fuzzy_strategy(toolbox: SearchToolbox) -> ToolboxStrategy:
    """Raw plus corrections of words no product holds (``tools.search.spelling``)."""
    index = _statistics_index(toolbox, "fuzzy", VocabularyIndex)
    return toolbox_strategy("fuzzy", toolbox, lambda request: with_corrections(index, request))


def spelled_strategy(toolbox: SearchToolbox) -> ToolboxStrategy:
    """The request in the catalog's spelling, alone (``tools.search.respelling``)."""
    index = _statistics_index(toolbox, "spelled", VocabularyIndex)
    return toolbox_strategy(
        "spelled", toolbox, lambda request: replace(request, text=respell(index, request.text).text)
    )


def copy_strategy(toolbox: SearchToolbox) -> ToolboxStrategy:
    """The respelled request as the tool path searches a call that copies it: no model."""
    return toolbox_strategy("copy", toolbox, _copied_call(toolbox, "copy"))


def fused_strategy(toolbox: SearchToolbox) -> ToolboxStrategy:
    """``copy``'s call with the concept index's dense ranking fused in, as the tool path runs
    it when asked to (``plan_tool_search(..., fuse_concepts=True)``).

    The ``fused`` path would rank by keywords alone where the concept index cannot answer;
    an eval must measure the fusion or nothing, so a concept index that cannot answer now is
    refused here, before any query runs."""
    problem = toolbox.concepts_problem()
    if problem is not None:
        raise BadInput(
            f"the 'fused' strategy needs the {toolbox.dataset} concept index, which cannot "
            f"answer: {problem}"
        )
    return toolbox_strategy("fused", toolbox, _copied_call(toolbox, "fused"))


def _copied_call(toolbox: SearchToolbox, name: str) -> Callable[[SearchRequest], SearchRequest]:
    """The request of a ``search_products`` call that copies the respelled request."""
    index = _statistics_index(toolbox, name, VocabularyIndex)

    def copied(request: SearchRequest) -> SearchRequest:
        call = {"query": respell(index, request.text).text}
        return plan_tool_search(SEARCH_PRODUCTS, call, size=request.size).request

    return copied


#: How each strategy without a model is built (its path and indexes come from the registry);
#: ``tests/test_strategy_registry.py`` checks the keys are exactly the registry's plain names.
PLAIN_BUILDERS: dict[str, Callable[[SearchToolbox], ToolboxStrategy]] = {
    "raw": raw_strategy,
    "rm3": rm3_strategy,
    "fuzzy": fuzzy_strategy,
    "spelled": spelled_strategy,
    "copy": copy_strategy,
    "fused": fused_strategy,
    "dual": dual_strategy,
    "hybrid": hybrid_strategy,
}


def _statistics_index(toolbox: SearchToolbox, name: str, protocol: type) -> Any:
    index = toolbox.lexical
    if not isinstance(index, protocol):
        raise BadInput(
            f"the {name!r} strategy reads term statistics that only the embedded tantivy index "
            f"exposes; {index.name} has none (use SHOPAGENT_LEXICAL_BACKEND=tantivy)"
        )
    return index


# -- strategies where a model writes the search -----------------------------------------------


@dataclass(slots=True)
class WrittenSearchStrategy:
    """A model writes one tool call per query; the call's arguments are searched."""

    name: str
    tool: str
    indexes: frozenset[str]
    writer: QueryWriter = field(repr=False)
    toolbox: SearchToolbox = field(repr=False)
    #: The prompt style (the strategy's ``WriterSpec``, ``agent.protocol.strategies``):
    #: ``rewrite`` or ``expand`` (the respelled request and candidate words in the prompt).
    style: str = REWRITE

    def retrieve(self, query_text: str, size: int) -> Retrieved:
        return self.retrieve_batch([query_text], size)[0]

    def retrieve_batch(self, query_texts: Sequence[str], size: int) -> list[Retrieved]:
        if not query_texts:
            return []
        prompts = [styled_prompt(self.tool, self.style, text, self.toolbox) for text in query_texts]
        started = time.perf_counter()
        replies = self.writer(prompts)
        generation_ms = (time.perf_counter() - started) * 1000 / len(prompts)
        if len(replies) != len(prompts):
            raise BackendError(f"the writer answered {len(replies)} of {len(prompts)} prompts")
        return [
            self._search(text, reply, generation_ms, size)
            for text, reply in zip(query_texts, replies, strict=True)
        ]

    def _search(self, query_text: str, reply: str, generation_ms: float, size: int) -> Retrieved:
        parsed = parse_tool_calls(reply, [schema_for(self.tool)])
        trace = StrategyTrace(
            query_text,
            raw_output=reply,
            parse_class=parsed.parse_class.value,
            problems=parsed.problems,
            generation_ms=generation_ms,
        )
        call = next((c for c in parsed.calls if c.name == self.tool), None)
        if call is None:
            trace = replace(trace, error=f"no usable {self.tool} call")
            return empty_results(self.name), trace
        started = time.perf_counter()
        try:
            search, results = search_tool_call(call.name, call.arguments, self.toolbox, size=size)
        except BadInput as error:  # arguments the search refuses
            search_ms = (time.perf_counter() - started) * 1000
            return empty_results(self.name), replace(trace, error=str(error), search_ms=search_ms)
        search_ms = (time.perf_counter() - started) * 1000
        return results, replace(trace, written=search.describe(), search_ms=search_ms)


# -- the full agent ---------------------------------------------------------------------------


class AgentStrategy:
    """One fresh single-turn conversation per query through the agent's LangGraph graph.

    The ranking is what the shopper is shown, in order, followed by the rest of the hits of
    the agent's own searches (call by call, rank by rank) up to ``size``: NDCG@10 reads the
    answer, Recall@100 what the agent found. Episodes are not written to the trajectory log
    (eval queries must not leak into training data). The trace holds the first model step
    (the one that writes the search); generation time is the turn's model time and search
    time the rest of the turn (tools and graph).
    """

    name = "agent"
    indexes = strategy_spec("agent").indexes

    def __init__(
        self,
        llm: BaseChatModel,
        toolbox: SearchToolbox,
        *,
        dataset: str = "",
        limits: AgentLimits | None = None,
    ) -> None:
        from agent.conversation.graph import AgentDeps, build_graph, model_id_of
        from agent.conversation.state import AgentLimits

        self.toolbox = toolbox
        deps = AgentDeps(
            toolbox=toolbox,
            limits=limits or AgentLimits(),
            log=None,
            model_id=model_id_of(llm),
            dataset=dataset,
            source="eval",
        )
        self.graph = build_graph(llm, deps)

    def retrieve(self, query_text: str, size: int) -> Retrieved:
        from agent.conversation.graph import EpisodeRecorded, turn_input
        from agent.conversation.session import RECURSION_LIMIT

        record: EpisodeRecord | None = None
        graph_input = turn_input(query_text, conversation_id=uuid.uuid4().hex[:12])
        config = {"recursion_limit": RECURSION_LIMIT}
        for event in self.graph.stream(graph_input, config, stream_mode="custom"):
            if isinstance(event, EpisodeRecorded):
                record = event.record
        if record is None:
            raise RuntimeError(f"the agent ended the turn for {query_text!r} without a record")
        return self._results(record, size), self._trace(query_text, record)

    def _results(self, record: EpisodeRecord, size: int) -> SearchResults:
        hits: list[tuple[Product, float]] = []
        for product_id in record.ranking()[:size]:
            product = self.toolbox.get(product_id)
            if product is not None:
                hits.append((product, 1.0 / (len(hits) + 1)))
        return SearchResults(hits=ranked(hits), backend="agent", total=len(hits))

    @staticmethod
    def _trace(query_text: str, record: EpisodeRecord) -> StrategyTrace:
        first = record.steps[0] if record.steps else None
        written = ""
        if first is not None and first.parsed_calls:
            written = json.dumps(first.parsed_calls[0].get("arguments", {}), sort_keys=True)
        failed = record.stop_reason in ("model_error", "timeout")
        return StrategyTrace(
            query_text,
            written=written,
            raw_output=first.raw_output if first else None,
            parse_class=first.parse_class if first else "invalid",
            problems=tuple(first.problems) if first else (),
            generation_ms=record.latency.model_ms,
            search_ms=max(0.0, record.latency.total_ms - record.latency.model_ms),
            error=f"turn ended: {record.stop_reason}" if failed else None,
        )


# -- the factory ------------------------------------------------------------------------------


def build_strategy(
    name: str,
    toolbox: SearchToolbox,
    writer: QueryWriter | None = None,
    *,
    llm: BaseChatModel | None = None,
    dataset: str = "",
) -> Strategy:
    """The named strategy over ``toolbox`` (``agent.protocol.strategies``): a writer strategy
    needs a ``writer``, the agent a chat model (``llm``)."""
    spec = strategy_spec(name)
    if spec.agent:
        if llm is None:
            raise BadInput("the 'agent' strategy needs a chat model to drive the agent")
        return AgentStrategy(llm, toolbox, dataset=dataset)
    if spec.writer is not None:
        if writer is None:
            raise BadInput(f"the {name!r} strategy needs a model to write its search (--model)")
        tool, style = spec.writer.tool, spec.writer.style
        return WrittenSearchStrategy(name, tool, spec.indexes, writer, toolbox, style)
    return PLAIN_BUILDERS[name](toolbox)
