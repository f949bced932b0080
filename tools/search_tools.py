"""Every retrieval strategy behind one call, opened lazily: what the CLI, agent and evals share.

Strategies (the RecLLM set plus fusion): ``lexical`` (the search API lookup), ``concepts``
(comma-separated concepts, each embedded, fused with RRF), ``dense`` (the whole request
embedded), ``direct`` (LLM-written titles matched to real products) and ``hybrid``
(RRF of lexical and dense).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING

from tools.catalog.product import Product
from tools.errors import BadInput
from tools.search.backend import ProductIndex
from tools.search.request import SearchFilters, SearchRequest
from tools.search.results import SearchResults
from tools.settings.config import Settings
from tools.stores import open_concepts, open_lexical

if TYPE_CHECKING:
    from tools.search.chroma_concepts import ConceptIndex

STRATEGIES = ("lexical", "concepts", "dense", "direct", "hybrid")
#: How deep each list goes before fusion: deeper lists give RRF more overlap to work with.
FUSION_DEPTH = 50


class SearchToolbox:
    def __init__(self, settings: Settings, dataset: str) -> None:
        self.settings = settings
        self.dataset = dataset

    @cached_property
    def lexical(self) -> ProductIndex:
        return open_lexical(self.settings, self.dataset)

    @cached_property
    def concepts(self) -> ConceptIndex:
        return open_concepts(self.settings, self.dataset)

    def run(self, strategy: str, request: SearchRequest) -> SearchResults:
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
        raise BadInput(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")

    def search_concepts(
        self, concepts: Sequence[str], filters: SearchFilters, size: int
    ) -> SearchResults:
        """One embedding query per concept, fused with RRF."""
        return self.concepts.search_concepts(list(concepts), filters, size)

    def lookup_titles(self, titles: Sequence[str], size: int) -> SearchResults:
        """Imagined product titles matched to real products."""
        return self.concepts.lookup_titles(list(titles), size)

    def hybrid(self, request: SearchRequest) -> SearchResults:
        from tools.search.fusion import reciprocal_rank_fusion

        depth = max(request.size, FUSION_DEPTH)
        deep = replace(request, size=depth)  # expansions and fuzziness travel with it
        lexical = self.lexical.search(deep)
        dense = self.concepts.search_dense(request.text, request.filters, depth)
        return reciprocal_rank_fusion([lexical, dense], size=request.size)

    def get(self, product_id: str) -> Product | None:
        return self.lexical.get(product_id)


def split_list(text: str) -> list[str]:
    """``"rgb mouse, wireless; light"`` -> ``["rgb mouse", "wireless", "light"]``.

    The one rule for a list written as text: ``shopagent search --tool concepts``, and a
    tool call whose ``concepts`` or ``titles`` argument is a string rather than a list.
    """
    parts = [p.strip() for chunk in text.split(";") for p in chunk.split(",")]
    return [p for p in parts if p]
