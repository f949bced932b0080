"""The catalog's own facet values (brands, category levels) with product counts.

The chat matches "only Logitech" or "not HP" against these values, never against a list
written into the code, so a catalog with other brands works unchanged. Tantivy reads them
from its term dictionary (``brand_kw`` and ``category_kw`` hold lower-cased exact values: one
walk of the dictionary, well under a millisecond on Chorus); Elasticsearch answers a ``terms``
aggregation. The display spelling ("StarTech.com", "HP") is read from one product per value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: At most this many values per facet are kept (the long tail is not worth matching).
MAX_VALUES = 2000


@dataclass(frozen=True, slots=True)
class FacetValue:
    """One value of a facet as the catalog spells it, and how many products carry it."""

    name: str
    count: int


@dataclass(frozen=True, slots=True)
class Facets:
    """Brands and category levels of an index, most frequent first."""

    brands: tuple[FacetValue, ...] = ()
    categories: tuple[FacetValue, ...] = ()
    #: lower-cased name -> value, for matching shopper text.
    by_key: dict[str, dict[str, FacetValue]] = field(default_factory=dict)

    @classmethod
    def of(cls, brands: list[FacetValue], categories: list[FacetValue]) -> Facets:
        by_key = {
            "brand": {v.name.lower(): v for v in brands},
            "category": {v.name.lower(): v for v in categories},
        }
        return cls(tuple(brands), tuple(categories), by_key)

    def brand(self, text: str) -> FacetValue | None:
        return self.by_key.get("brand", {}).get(" ".join(text.lower().split()))

    def category(self, text: str) -> FacetValue | None:
        return self.by_key.get("category", {}).get(" ".join(text.lower().split()))


def read_facets(index: Any) -> Facets:
    """Facets of a lexical index (tantivy or Elasticsearch); empty for anything else."""
    searcher_of = getattr(getattr(index, "_index", None), "searcher", None)
    if callable(searcher_of):
        return _tantivy_facets(index)
    client = getattr(index, "client", None)
    if client is not None and hasattr(index, "index_name"):
        return _elasticsearch_facets(index)
    return Facets()


def _tantivy_facets(index: Any) -> Facets:
    import tantivy

    searcher = index._index.searcher()

    def values(field_name: str, stored: str) -> list[FacetValue]:
        out: list[FacetValue] = []
        for term, count in searcher.terms_with_prefix(field_name, "", limit=MAX_VALUES):
            query = tantivy.Query.term_query(index.schema, field_name, term)
            found = searcher.search(query, limit=1, count=False)
            name = term
            if found.hits:
                product = index._product(searcher.doc(found.hits[0][1]))
                name = _spelling(product, stored, term)
            out.append(FacetValue(name, int(count)))
        return out

    return Facets.of(values("brand_kw", "brand"), values("category_kw", "category"))


def _elasticsearch_facets(index: Any) -> Facets:
    body = {
        "size": 0,
        "aggs": {
            "brand": {"terms": {"field": "brand.keyword", "size": MAX_VALUES}},
            "category": {"terms": {"field": "category_path", "size": MAX_VALUES}},
        },
    }
    try:
        response = index.client.search(index=index.index_name, **body)
    except Exception:  # an aggregation the mapping cannot answer: no facets, not a failed chat
        return Facets()
    aggregations = dict(response).get("aggregations") or {}

    def values(name: str) -> list[FacetValue]:
        buckets = (aggregations.get(name) or {}).get("buckets") or []
        return [FacetValue(str(b["key"]), int(b["doc_count"])) for b in buckets]

    return Facets.of(values("brand"), values("category"))


def _spelling(product: Any, stored: str, term: str) -> str:
    if stored == "brand":
        return str(product.brand) or term
    for level in product.category_path:
        if level.lower() == term:
            return str(level)
    return term
