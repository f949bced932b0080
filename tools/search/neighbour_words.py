"""Candidate words from the titles of the products nearest to a request in the dense index.

Why not the top raw results (RM3's feedback words, ``tools.search.prf``)? Measured on Home
Depot with ``rl.headroom``: always adding the first feedback word loses (dev −0.0065 NDCG@10),
and no choice among them could be learned from the prompt. The feedback products are the
raw search's own hits, so their words mostly repeat what already matched. The nearest products
by meaning (MiniLM, the concept index) include the ones the shopper's words miss, and the
words their titles share name the product the way the catalog does (``bakeware`` for
``cake pan``): always adding the first such word gains (dev +0.0097, p = 0.006).

A word is a candidate when it is in the title of at least one of the ``neighbours`` nearest
products, is not a number or shorter than ``MIN_CHARS``, is not already one of the request's
terms (compared after the index's stemming) and is in at most ``max_df_ratio`` of the catalog's
titles (a word most titles hold ranks nothing; a word of a single title always passes).
Candidates are ordered by how many of the neighbours' titles hold them (one vote per title and
stem), ties by the nearest product that holds them, each written as its most frequent spelling
there.
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol, runtime_checkable

from tools.search.request import SearchFilters
from tools.search.results import SearchResults
from tools.search.tantivy_schema import surface_analyzer

NEIGHBOURS = 10
MIN_CHARS = 3
MAX_DF_RATIO = 0.1
#: The field whose document frequency decides whether a word is too common.
DF_FIELD = "title"


@runtime_checkable
class DenseNeighbours(Protocol):
    """What the candidates need of a dense index (``ConceptIndex`` has it)."""

    def search_dense(
        self, text: str, filters: SearchFilters | None = None, size: int = 10
    ) -> SearchResults: ...


@runtime_checkable
class TermStatistics(Protocol):
    """What the candidates need of the lexical index (``TantivyIndex`` has it)."""

    def terms(self, text: str) -> list[str]: ...

    def doc_freq(self, field: str, term: str) -> int: ...

    def count(self) -> int: ...


def neighbour_words(
    dense: DenseNeighbours,
    lexical: TermStatistics,
    text: str,
    limit: int,
    *,
    neighbours: int = NEIGHBOURS,
    max_df_ratio: float = MAX_DF_RATIO,
) -> list[str]:
    """Up to ``limit`` candidate words for ``text``, best first (see the module doc)."""
    if limit <= 0 or not text.strip():
        return []
    own = set(lexical.terms(text))
    surface = surface_analyzer()
    votes: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = {}
    for hit in dense.search_dense(text, size=neighbours).hits:
        seen: set[str] = set()
        for word in surface.analyze(hit.product.title):
            if len(word) < MIN_CHARS or word.isdigit():
                continue
            terms = lexical.terms(word)
            if len(terms) != 1 or terms[0] in own or terms[0] in seen:
                continue
            seen.add(terms[0])
            votes[terms[0]] += 1
            spellings.setdefault(terms[0], Counter())[word] += 1
    common = max(1.0, max_df_ratio * lexical.count())  # one product's word is never common
    words: list[str] = []
    for stem, _ in votes.most_common():
        if lexical.doc_freq(DF_FIELD, stem) <= common:
            words.append(spellings[stem].most_common(1)[0][0])
            if len(words) == limit:
                break
    return words
