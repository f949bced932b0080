"""``shopagent search`` as a library: flags to a ``SearchRequest``, results to a JSON document.

The command's flags arrive as text: argv bytes that are not UTF-8 come as lone surrogates and
become U+FFFD here (``tools.text.valid_text``), prices are read as catalog prices are (``nan``,
``inf``, ``-1``, ``1e400`` refused), and each ``--attribute`` must be ``KEY=VALUE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from tools.catalog.product import parse_price
from tools.errors import BadInput
from tools.search.request import SearchFilters, SearchRequest
from tools.search.results import SearchResults
from tools.text import valid_text


def search_filters(
    *,
    brands: Sequence[str] = (),
    category: str | None = None,
    min_price: str | None = None,
    max_price: str | None = None,
    attributes: Sequence[str] = (),
) -> SearchFilters:
    """The filters the command's flags describe; a bad price or attribute is ``BadInput``."""
    return SearchFilters(
        brands=tuple(valid_text(b) for b in brands),
        category=valid_text(category) if category else None,
        min_price=_price(min_price, "--min-price"),
        max_price=_price(max_price, "--max-price"),
        attributes=dict(key_value(valid_text(item)) for item in attributes),
    )


def search_request(text: str, filters: SearchFilters, **options: Any) -> SearchRequest:
    """The request for ``text`` (made valid Unicode); ``options``: ``SearchRequest``'s own."""
    return SearchRequest(valid_text(text), filters=filters, **options)


def _price(value: str | None, flag: str) -> Decimal | None:
    return None if value is None else parse_price(value, flag)


def key_value(item: str) -> tuple[str, str]:
    """``KEY=VALUE`` as a pair, both stripped."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise BadInput(f"--attribute must look like KEY=VALUE, got {item!r}")
    return key.strip(), value.strip()


def results_document(
    results: SearchResults, *, query: str, dataset: str, tool: str
) -> dict[str, Any]:
    """``search --json``: what was searched, how, and each hit's rank, score and product as
    the catalog stores it (``Product.to_dict``: the price a string, exact)."""
    return {
        "query": query,
        "dataset": dataset,
        "tool": tool,
        "backend": results.backend,
        "took_ms": results.took_ms,
        "total": results.total,
        "hits": [
            {"rank": hit.rank, "score": hit.score, "product": hit.product.to_dict()}
            for hit in results.hits
        ],
    }
