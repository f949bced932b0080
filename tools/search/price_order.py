"""Search results ordered by price, among the products that match the request well.

Why not sort every match by price: a lexical search matches any of its words, so "wireless
mouse" also matches a $3 "wireless" cable holder and a mouse pad; ordered by price, those come
first and the shopper who asked for "the cheapest wireless mouse" sees junk. So the order is
applied to a pool of good matches only:

- the relevance ranking to ``PRICE_ORDER_DEPTH`` (50): deep enough to hold the cheap and the
  dear ends of one product type in a catalog of tens of thousands, shallow enough that the
  pool stays on that type (the fusion paths rank to the same depth, ``FUSION_DEPTH``);
- of those, the hits scoring at least ``MIN_SCORE_FRACTION`` (half) of the top hit's score: on
  Chorus (tantivy, title match on) the one-word matches of "bluetooth speaker" (a Bluetooth
  printer card, a speaker bar) score 0.39-0.43 of the one Bluetooth speaker, those of "sony
  headphones" (Sony batteries) 0.45-0.46 of Sony headphones, while "wireless mouse" keeps 43
  mice above half. Half keeps the products of the requested type and drops the one-word
  matches; the pool may then hold fewer than ``size`` (one, for "bluetooth speaker"), which is
  the honest answer when the catalog has no more of that type.
  A fraction rather than a score is used because it holds for any scale: BM25 from tantivy or
  Elasticsearch, RRF of fused lists, cosine similarity. A top score of 0 or less (a browse by
  filters only, where nothing ranks) keeps the whole pool.

The pool is then ordered by price (``price_asc`` cheapest first, ``price_desc`` dearest first;
ties keep their relevance order; a product without a price comes last either way) and cut to
the requested size. ``SearchToolbox.run`` applies it to whatever a path returns, so both lexical
backends (and the dense and hybrid paths) order the same way by construction; no backend reads
``SearchRequest.sort``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import TypeVar

from tools.search.request import PRICE_DESC, RELEVANCE, SearchRequest
from tools.search.results import SearchResults, ranked

#: How deep in the relevance ranking the price order looks (see the module docstring).
PRICE_ORDER_DEPTH = 50
#: A hit enters the pool when its score is at least this fraction of the top hit's.
MIN_SCORE_FRACTION = 0.5

T = TypeVar("T")


def price_ordered(
    request: SearchRequest, search: Callable[[SearchRequest], SearchResults]
) -> SearchResults:
    """``search(request)``, or for a price order: the relevance ranking to the pool's depth,
    ordered by price and cut to ``request.size`` (see the module docstring)."""
    if request.sort == RELEVANCE:
        return search(request)
    deep = replace(request, size=max(request.size, PRICE_ORDER_DEPTH), sort=RELEVANCE)
    return order_by_price(search(deep), request.sort, request.size)


def order_by_price(results: SearchResults, sort: str, size: int) -> SearchResults:
    """The pool of good matches in ``results`` ordered by price, ranks renumbered, scores
    kept; ``detail`` says the order and how many hits the pool held."""
    if sort == RELEVANCE:
        return replace(results, hits=results.hits[:size])
    pool = good_matches([(hit.product, hit.score) for hit in results.hits])
    ordered = sort_by_price(pool, sort, lambda pair: pair[0].price)[:size]
    detail = {**results.detail, "sort": sort, "price_pool": len(pool)}
    return replace(results, hits=ranked(ordered), detail=detail)


def good_matches(scored: Sequence[tuple[T, float]]) -> list[tuple[T, float]]:
    """The first ``PRICE_ORDER_DEPTH`` of a ranking that score at least ``MIN_SCORE_FRACTION``
    of the top one (all of them when the top score is not positive)."""
    top = scored[:PRICE_ORDER_DEPTH]
    if not top or top[0][1] <= 0:
        return list(top)
    floor = top[0][1] * MIN_SCORE_FRACTION
    return [pair for pair in top if pair[1] >= floor]


def sort_by_price(
    items: Sequence[T], sort: str, price_of: Callable[[T], Decimal | None]
) -> list[T]:
    """``items`` by price for ``sort`` (a stable sort: equal prices keep their order), those
    without a price last; relevance leaves them as they are. The one price order, for search
    results and for a list the chat shows alike."""
    if sort == RELEVANCE:
        return list(items)
    sign = -1 if sort == PRICE_DESC else 1

    def key(item: T) -> tuple[bool, Decimal]:
        price = price_of(item)
        return (price is None, Decimal(0) if price is None else sign * price)

    return sorted(items, key=key)
