"""Every retrieval path behind one call, opened lazily: what the CLI, agent and evals share.

Retrieval paths (the RecLLM set plus fusion): ``lexical`` (the search API lookup), ``concepts``
(comma-separated concepts, each embedded, fused with RRF), ``dense`` (the whole request
embedded), ``direct`` (LLM-written titles matched to real products), ``hybrid`` (RRF of lexical
and dense) and ``fused`` (``hybrid`` where the concept index can answer, the lexical ranking
alone where it cannot: what the chat's ``search_products`` runs where the dataset's search
setting fuses concepts in, ``tools.settings.search_choice``). A path is not an eval strategy:
strategies (raw, rm3, policy, ..., ``agent.protocol.strategies``) decide what request is sent
down which path.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar

from tools.catalog.product import Product
from tools.errors import BadInput, one_line
from tools.search.backend import ProductIndex, SearchError
from tools.search.expand_hints import ExpandHints, expand_hints
from tools.search.facets import Facets, read_facets
from tools.search.neighbour_words import DenseNeighbours
from tools.search.prf import FeedbackIndex
from tools.search.price_order import price_ordered
from tools.search.request import SearchFilters, SearchRequest
from tools.search.respelling import respell
from tools.search.results import SearchResults
from tools.search.spelling import VocabularyIndex
from tools.settings.config import Settings
from tools.stores import open_concepts, open_lexical

if TYPE_CHECKING:
    from tools.search.chroma_concepts import ConceptIndex

#: The retrieval paths ``SearchToolbox.run`` takes (``shopagent search --tool``).
RETRIEVAL_PATHS = ("lexical", "concepts", "dense", "direct", "hybrid", "fused")
#: The indexes a toolbox opens, by the name of its attribute: what a strategy declares it reads.
INDEXES = ("lexical", "concepts")
#: How deep each list goes before fusion: deeper lists give RRF more overlap to work with.
FUSION_DEPTH = 50
#: What ``SearchToolbox.warm`` searches and writes hints for: plain words every catalog has,
#: so each path runs its real code (a search that matched nothing would skip the ranking).
WARM_UP_TEXT = "black cable"
#: Texts whose respelling ``SearchToolbox.respell`` keeps (a conversation's recent messages).
RESPELL_MEMO = 4096
#: ``SearchToolbox.warm``'s word for a store it opened and used.
READY = "ready"
#: ``SearchResults.detail`` key of a ``fused`` search that ranked by keywords alone: why the
#: concept index could not answer, in one line.
CONCEPTS_SKIPPED = "concepts_skipped"

T = TypeVar("T")


class SearchToolbox:
    """The retrieval service: every way the CLI, the agent and the evals reach the catalog.

    Searches (``run`` and the path methods), products by id (``get``, ``get_many``, and
    ``get_from_concept_index`` for when the lexical index cannot answer), the catalog's
    facets, and the hints the expand writer prompt shows (``expand_hints``). The indexes open
    on first use; callers ask the service, never its indexes, what it can do
    (``has_term_statistics``).
    """

    def __init__(self, settings: Settings, dataset: str) -> None:
        self.settings = settings
        self.dataset = dataset
        #: How many times each index was opened, by name (``INDEXES``): once each, however
        #: many threads ask at the same time (the chat's warm-up and its first turn may).
        self.opens: Counter[str] = Counter()
        self._open_locks = {name: threading.Lock() for name in INDEXES}
        #: The last ``warm`` report; once every part is ready, a later call returns it.
        self._warmed: dict[str, str] = {}
        self._warm_lock = threading.Lock()
        self._respelled: dict[str, str] = {}
        self._respell_lock = threading.Lock()

    @cached_property
    def lexical(self) -> ProductIndex:
        return self._open_once("lexical", lambda: open_lexical(self.settings, self.dataset))

    @cached_property
    def concepts(self) -> ConceptIndex:
        return self._open_once("concepts", lambda: open_concepts(self.settings, self.dataset))

    def _open_once(self, name: str, opener: Callable[[], T]) -> T:
        """``opener``'s index, opened by one thread only: ``cached_property`` stopped locking
        in Python 3.12, and an index opened twice costs its open twice and leaves two copies.
        A failed open caches nothing, so the next use tries again."""
        with self._open_locks[name]:
            if name not in self.__dict__:
                self.__dict__[name] = opener()
                self.opens[name] += 1
            return self.__dict__[name]  # type: ignore[no-any-return]

    def warm(self) -> dict[str, str]:
        """Open everything a chat's first turn reads, and use each once, so that turn opens
        nothing: the lexical index (a search), the concept index with its sentence model (a
        dense search: opening Chroma, loading MiniLM and its first encoding were about 7 s of
        the first turn on Chorus) and the expand prompt's hints (``expand_hints``, as the
        writer prompt asks for them).

        Returns each store's name (``lexical``, ``concepts``, ``hints``) with ``READY`` or, in
        one line, why it was skipped; never raises. A concept index still building is skipped
        (the turn's hints fall back to feedback words, as they would anyway). A store that
        cannot open keeps nothing half-open: the turn that needs it opens it again and reports
        what is wrong. Safe beside a turn: each index opens once (``opens``), under a lock.

        The chat warms the search side while the model server starts and again in the session's
        warm-up: a call while another runs waits for it, and once every part is ready nothing
        is searched again (a part that was skipped, such as a concept index then building, is
        tried again).
        """
        with self._warm_lock:
            if not self._warmed or any(state != READY for state in self._warmed.values()):
                self._warmed = self._warm_now()
            return dict(self._warmed)

    def _warm_now(self) -> dict[str, str]:
        report = {
            "lexical": _attempt(lambda: self.run("lexical", SearchRequest(WARM_UP_TEXT))),
            "concepts": _attempt(lambda: self.concepts.search_dense(WARM_UP_TEXT, size=1)),
        }
        if report["lexical"] != READY:
            report["hints"] = "skipped: no lexical index"
        elif not self.has_term_statistics():
            report["hints"] = "skipped: the writer prompt shows no hints on this backend"
        else:
            report["hints"] = _attempt(lambda: self.expand_hints(WARM_UP_TEXT, fallback=True))
        return report

    def run(self, strategy: str, request: SearchRequest) -> SearchResults:
        """``request`` down one retrieval path, in the order it asks for: a price order is
        applied here, to what any path returns (``tools.search.price_order``), so the tantivy
        and Elasticsearch backends order the same way and neither reads ``request.sort``."""
        return price_ordered(request, lambda deep: self._run_path(strategy, deep))

    def _run_path(self, strategy: str, request: SearchRequest) -> SearchResults:
        if strategy == "lexical":
            return self.lexical.search(request)
        if strategy == "concepts":
            return self.search_concepts(split_list(request.text), request.filters, request.size)
        if strategy == "dense":
            return self.concepts.search_dense(request.text, request.filters, request.size)
        if strategy == "direct":
            return self.lookup_titles(split_list(request.text), request.size)
        if strategy == "hybrid":
            return self.hybrid(request)
        if strategy == "fused":
            return self.fused(request)
        raise BadInput(f"unknown strategy {strategy!r}; choose one of {RETRIEVAL_PATHS}")

    def search_concepts(
        self, concepts: Sequence[str], filters: SearchFilters, size: int
    ) -> SearchResults:
        """One embedding query per concept, fused with RRF."""
        return self.concepts.search_concepts(list(concepts), filters, size)

    def lookup_titles(self, titles: Sequence[str], size: int) -> SearchResults:
        """Imagined product titles matched to real products."""
        return self.concepts.lookup_titles(list(titles), size)

    def hybrid(self, request: SearchRequest) -> SearchResults:
        """RRF of the lexical ranking of ``request`` and the dense ranking of its text; either
        index failing fails the search (an eval must not score half of a strategy)."""
        return self._fuse(request, keywords_alone=False)

    def fused(self, request: SearchRequest) -> SearchResults:
        """``hybrid``, except that a concept index that cannot answer (still building, not
        built, its server down) leaves the lexical ranking alone, with ``CONCEPTS_SKIPPED``
        in its detail: the shopper gets what the keyword search gives rather than an error,
        as ``warm`` and the expand hints fall back while the concept index builds. A failing
        lexical index still fails the search (the tool node then tries the concept index)."""
        return self._fuse(request, keywords_alone=True)

    def _fuse(self, request: SearchRequest, *, keywords_alone: bool) -> SearchResults:
        from tools.search.fusion import reciprocal_rank_fusion

        depth = max(request.size, FUSION_DEPTH)
        deep = replace(request, size=depth)  # expansions, fuzziness and title match travel
        lexical = self.lexical.search(deep)
        try:
            dense = self.concepts.search_dense(request.text, request.filters, depth)
        except SearchError as error:
            if not keywords_alone:
                raise
            skipped = {**lexical.detail, CONCEPTS_SKIPPED: one_line(error, 200)}
            return replace(lexical, hits=lexical.hits[: request.size], detail=skipped)
        return reciprocal_rank_fusion([lexical, dense], size=request.size)

    def concepts_problem(self) -> str | None:
        """Why the concept index cannot answer a dense search now, in one line; None when it
        can. For callers that must not fall back silently (an eval of the ``fused`` path)."""
        try:
            self.concepts.search_dense(WARM_UP_TEXT, size=1)
        except SearchError as error:
            return one_line(error, 200)
        return None

    def get(self, product_id: str) -> Product | None:
        return self.lexical.get(product_id)

    def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        """The products the catalog has among ``product_ids``, by id (a missing one is left
        out); a failing index raises ``SearchError`` for all of them."""
        found = {}
        for product_id in dict.fromkeys(product_ids):
            product = self.lexical.get(product_id)
            if product is not None:
                found[product_id] = product
        return found

    def get_from_concept_index(self, product_id: str) -> Product | None:
        """A product as the concept index stores it: the lookup when the lexical index fails.
        Opens the concept index, so callers ask only after the lexical side has answered."""
        return self.concepts.get(product_id)

    def facets(self) -> Facets:
        """The catalog's brands and categories with their counts (``tools.search.facets``)."""
        return read_facets(self.lexical)

    def has_term_statistics(self) -> bool:
        """Can the lexical index respell a request and give feedback words (the embedded
        tantivy index can; Elasticsearch cannot)? The expand prompt needs it."""
        return isinstance(self.lexical, FeedbackIndex)

    def respell(self, text: str) -> str:
        """``text`` in the catalog's spelling (``tools.search.respelling``: measures as the
        catalog writes them, run-together words split, words no product holds corrected),
        where the lexical index knows its vocabulary (the embedded index); as written
        otherwise (Elasticsearch). The graph's own searches and the writer's view of the
        conversation read the shopper's words through it, as the tool path's ``copy`` does;
        a conversation re-reads its last messages every turn, hence the memo."""
        with self._respell_lock:
            known = self._respelled.get(text)
        if known is not None:
            return known
        index = self.lexical
        known = respell(index, text).text if isinstance(index, VocabularyIndex) else text
        with self._respell_lock:
            if len(self._respelled) >= RESPELL_MEMO:
                self._respelled.clear()
            self._respelled[text] = known
        return known

    def expand_hints(self, query_text: str, *, fallback: bool = False) -> ExpandHints:
        """What the expand prompt shows for ``query_text`` (``tools.search.expand_hints``):
        the request respelled by the lexical index's vocabulary, and candidate words from the
        concept index, or RM3 feedback words without one. ``fallback``: a concept index that
        cannot answer yet (still building) gives feedback words instead of an error."""
        index = self.lexical
        if not isinstance(index, FeedbackIndex):
            raise ValueError(
                "the expand prompt needs the embedded tantivy index for its candidate words"
            )
        dense = self.concepts
        neighbours = dense if isinstance(dense, DenseNeighbours) else None
        return expand_hints(index, query_text, neighbours, fallback=fallback)


def _attempt(use: Callable[[], object]) -> str:
    """``READY`` if ``use`` ran, else why not in one line (``SearchToolbox.warm``)."""
    try:
        use()
    except Exception as error:  # the turn that needs the store says what is wrong
        return f"skipped: {one_line(error, 200)}"
    return READY


def split_list(text: str) -> list[str]:
    """``"rgb mouse, wireless; light"`` -> ``["rgb mouse", "wireless", "light"]``.

    The one rule for a list written as text: ``shopagent search --tool concepts``, and a
    tool call whose ``concepts`` or ``titles`` argument is a string rather than a list.
    """
    parts = [p.strip() for chunk in text.split(";") for p in chunk.split(",")]
    return [p for p in parts if p]
