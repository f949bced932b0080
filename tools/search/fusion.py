"""Reciprocal Rank Fusion: merge ranked lists by rank alone, so unlike scores never mix.

BM25 scores and cosine similarities live on different scales; RRF (Cormack et al., 2009)
ignores them and scores each product ``sum_i w_i / (k + rank_i)`` over the lists that
contain it. ``k = 60`` is the paper's value: it damps the head so that agreement between
lists matters more than a single first place.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from tools.catalog.product import Product
from tools.search.results import SearchResults, ranked

DEFAULT_K = 60


def reciprocal_rank_fusion(
    result_lists: Sequence[SearchResults],
    k: float = DEFAULT_K,
    size: int = 10,
    weights: Sequence[float] | None = None,
) -> SearchResults:
    """One ranking from several: products deduplicated by id, best fused score first.

    Ties are broken by the best single rank, then by first appearance (lists in order), so
    the result is deterministic. ``took_ms`` is the inputs' time plus the fusion's own
    (the inputs are assumed to have run one after another).
    """
    started = time.perf_counter()
    if not result_lists:
        raise ValueError("reciprocal_rank_fusion needs at least one result list")
    if k < 0:
        raise ValueError(f"k must not be negative, got {k}")
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    if weights is None:
        weights = [1.0] * len(result_lists)
    if len(weights) != len(result_lists):
        raise ValueError(f"got {len(weights)} weights for {len(result_lists)} result lists")
    if any(weight < 0 for weight in weights):
        raise ValueError(f"weights must not be negative, got {list(weights)}")

    scores: dict[str, float] = {}
    best_rank: dict[str, int] = {}
    products: dict[str, Product] = {}
    for results, weight in zip(result_lists, weights, strict=True):
        seen_here: set[str] = set()
        for hit in results.hits:
            product_id = hit.product.id
            if product_id in seen_here:  # a list that repeats a product counts it once
                continue
            seen_here.add(product_id)
            products.setdefault(product_id, hit.product)
            scores[product_id] = scores.get(product_id, 0.0) + weight / (k + hit.rank)
            best_rank[product_id] = min(best_rank.get(product_id, hit.rank), hit.rank)

    order = {product_id: position for position, product_id in enumerate(products)}
    fused = sorted(products, key=lambda pid: (-scores[pid], best_rank[pid], order[pid]))
    names = list(dict.fromkeys(results.backend for results in result_lists))
    took_ms = sum(results.took_ms for results in result_lists)
    return SearchResults(
        hits=ranked([(products[pid], scores[pid]) for pid in fused[:size]]),
        backend=f"rrf({'+'.join(names)})",
        took_ms=took_ms + (time.perf_counter() - started) * 1000,
        total=len(products),
        detail={"k": k, "weights": list(weights), "fused": [r.backend for r in result_lists]},
    )
