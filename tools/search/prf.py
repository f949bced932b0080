"""Pseudo-relevance feedback (RM3): words from the top raw results, added to the shopper's words.

No maintained pure-Python RM3 exists (Anserini/pyserini and PyTerrier need Java), so this is
the classic recipe, as Anserini's ``Rm3Reranker`` runs it, over the project's own index:

1. search the raw request; keep the top ``fb_docs`` products and their BM25 scores;
2. each product's text (``FEEDBACK_FIELDS``) is analysed with the index's own chain, and
   ``P(t|d) = tf(t, d) / |d|``; the relevance model is ``RM(t) = sum_d P(t|d) * score(d)``;
3. terms in more than ``max_df_ratio`` of the catalog (Anserini: 10%), shorter than 2 or
   longer than 20 characters, or already in the request are dropped; the best ``fb_terms``
   are kept and normalised to sum 1;
4. interpolation with the original query (weight ``original_weight`` = lambda): the query's
   ``n`` terms get ``lambda / n`` each, a feedback term ``(1 - lambda) * RM(t)``. Scaled so the
   shopper's terms keep weight 1 (what ``SearchRequest.expansions`` means), a feedback term
   gets ``(1 - lambda) / lambda * n * RM(t)``, capped at 1.

Feedback terms travel as words, not stems: each stem is written as the surface word that
produced it most often in the feedback products, so every backend can analyse it again
(Elasticsearch gets ``match`` queries, never analysed terms it would stem twice). The same
terms are offered to the policy as candidates to choose from (``candidate_words``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Protocol, runtime_checkable

from tools.catalog.product import Product
from tools.search.request import MAX_EXPANSION_WEIGHT, Expansion, SearchRequest
from tools.search.results import SearchResults
from tools.search.tantivy_schema import surface_analyzer

#: The product text feedback reads. Descriptions carry most words, titles the product type.
FEEDBACK_FIELDS: tuple[str, ...] = ("title", "brand", "category", "description")
#: Fields whose document frequency decides whether a term is too common to be feedback.
DF_FIELDS: tuple[str, ...] = ("title", "description")
MIN_TERM_CHARS = 2
MAX_TERM_CHARS = 20


@runtime_checkable
class FeedbackIndex(Protocol):
    """What feedback needs of a lexical index (``TantivyIndex`` has it)."""

    def search(self, request: SearchRequest) -> SearchResults: ...

    def terms(self, text: str) -> list[str]: ...

    def doc_freq(self, field: str, term: str) -> int: ...

    def count(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RM3Config:
    """RM3's knobs: Anserini's fb_docs/fb_terms; lambda 0.9 was best of 0.6-0.95 on Chorus and
    the first 1,000 Home Depot train queries (every RM3 setting scored below raw on both)."""

    #: Feedback products: the top of the raw ranking taken as relevant.
    fb_docs: int = 10
    #: Feedback terms added to the query.
    fb_terms: int = 10
    #: lambda: the original query's share of the interpolated model.
    original_weight: float = 0.9
    #: Terms in more than this share of the catalog carry no evidence (Anserini: 0.1).
    max_df_ratio: float = 0.1

    def __post_init__(self) -> None:
        if self.fb_docs < 1 or self.fb_terms < 1:
            raise ValueError("fb_docs and fb_terms must be at least 1")
        if not 0 < self.original_weight <= 1:
            raise ValueError(f"original_weight must be in (0, 1], got {self.original_weight}")
        if not 0 < self.max_df_ratio <= 1:
            raise ValueError(f"max_df_ratio must be in (0, 1], got {self.max_df_ratio}")


@dataclass(frozen=True, slots=True)
class FeedbackTerm:
    """One feedback term: its stem, the word it is written as, and its relevance-model weight."""

    stem: str
    word: str
    weight: float


class RelevanceModel:
    """RM3 over one index: ``feedback_terms`` for inspection, ``expand`` for the search."""

    def __init__(self, index: FeedbackIndex, config: RM3Config | None = None) -> None:
        self.index = index
        self.config = config or RM3Config()
        self._surface = surface_analyzer()
        self._num_docs = max(1, index.count())

    def feedback_terms(
        self, request: SearchRequest, results: SearchResults | None = None
    ) -> list[FeedbackTerm]:
        """The top ``fb_terms`` terms of the feedback products, weights summing to 1.

        ``results``: the raw search when the caller already ran it (at least ``fb_docs``
        deep); otherwise it is run here.
        """
        config = self.config
        if results is None:
            feedback_request = replace(request, size=config.fb_docs, expansions=())
            results = self.index.search(feedback_request)
        hits = results.hits[: config.fb_docs]
        if not hits:
            return []
        own = set(self.index.terms(request.text))
        model: dict[str, float] = defaultdict(float)
        spellings: dict[str, Counter[str]] = defaultdict(Counter)
        for hit in hits:
            counts = self._stems(hit.product, spellings)
            length = sum(counts.values())
            if not length:
                continue
            for stem, tf in counts.items():
                model[stem] += tf / length * max(hit.score, 0.0)
        kept = [
            (stem, weight)
            for stem, weight in model.items()
            if weight > 0 and stem not in own and self._informative(stem)
        ]
        kept.sort(key=lambda item: (-item[1], item[0]))
        kept = kept[: config.fb_terms]
        total = sum(weight for _, weight in kept)
        if total <= 0:
            return []
        return [
            FeedbackTerm(stem, spellings[stem].most_common(1)[0][0], weight / total)
            for stem, weight in kept
        ]

    def expand(self, request: SearchRequest, results: SearchResults | None = None) -> SearchRequest:
        """``request`` with its RM3 feedback words as weighted expansions (see the module doc)."""
        terms = self.feedback_terms(request, results)
        return replace(request, expansions=interpolate(request, terms, self.index, self.config))

    def candidate_words(self, request: SearchRequest, limit: int) -> list[str]:
        """The best feedback words, as the policy's prompt offers them."""
        return [term.word for term in self.feedback_terms(request)[:limit]]

    def _stems(self, product: Product, spellings: dict[str, Counter[str]]) -> Counter[str]:
        counts: Counter[str] = Counter()
        for field in FEEDBACK_FIELDS:
            text = _field_text(product, field)
            if not text:
                continue
            for word in self._surface.analyze(text):
                stem = _stem_of(self.index, word)
                if stem is None:
                    continue
                counts[stem] += 1
                spellings[stem][word] += 1
        return counts

    def _informative(self, stem: str) -> bool:
        if not MIN_TERM_CHARS <= len(stem) <= MAX_TERM_CHARS or not stem.isalnum():
            return False
        if stem.isdigit():
            return False
        df = max(self.index.doc_freq(field, stem) for field in DF_FIELDS)
        return df / self._num_docs <= self.config.max_df_ratio


def interpolate(
    request: SearchRequest,
    terms: Sequence[FeedbackTerm],
    index: FeedbackIndex,
    config: RM3Config,
) -> tuple[Expansion, ...]:
    """Feedback terms as expansions, scaled so the request's own terms keep weight 1."""
    own = max(1, len(index.terms(request.text)))
    scale = (1.0 - config.original_weight) / config.original_weight * own
    expansions: list[Expansion] = []
    for term in terms:
        weight = min(MAX_EXPANSION_WEIGHT, round(scale * term.weight, 6))
        if weight > 0:
            expansions.append((term.word, weight))
    return tuple(expansions)


def _field_text(product: Product, field: str) -> str:
    if field == "title":
        return product.title
    if field == "brand":
        return product.brand
    if field == "category":
        return product.category
    if field == "description":
        return product.description
    raise ValueError(f"unknown feedback field {field!r}")


def _stem_of(index: FeedbackIndex, word: str) -> str | None:
    """The index term of one surface word (None for a stopword), cached per index."""
    return _stem_cache(index)(word)


@lru_cache(maxsize=8)
def _stem_cache(index: FeedbackIndex) -> Callable[[str], str | None]:
    @lru_cache(maxsize=200_000)
    def stem(word: str) -> str | None:
        terms = index.terms(word)
        return terms[0] if len(terms) == 1 else None

    return stem
