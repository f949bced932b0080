"""Search backends behind one request model: lexical (Elasticsearch, tantivy), concepts (Chroma)."""

from tools.search.backend import (
    BackendUnavailable,
    IndexMissing,
    ProductIndex,
    SearchBackend,
    SearchError,
)
from tools.search.request import SearchFilters, SearchRequest
from tools.search.results import SearchHit, SearchResults

__all__ = [
    "BackendUnavailable",
    "IndexMissing",
    "ProductIndex",
    "SearchBackend",
    "SearchError",
    "SearchFilters",
    "SearchHit",
    "SearchRequest",
    "SearchResults",
]
