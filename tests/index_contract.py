"""The ``ProductIndex`` contract as behaviour, for any backend that really stores products.

A ``runtime_checkable`` Protocol's ``isinstance`` only asks whether the attributes exist, so a
backend whose ``delete`` did nothing, or whose ``get`` returned a different product, would
pass it. This drives every method of the protocol and checks what it does.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal

from tools.catalog.product import Product
from tools.search.backend import ProductIndex
from tools.search.request import SearchRequest
from tools.search.results import SearchResults

PROTOCOL_METHODS = ("search", "get", "count", "index", "upsert", "delete")


def assert_signatures_match_the_protocol(backend: type) -> None:
    """Each method takes the protocol's parameters, by the same names, kinds and defaults
    (callers pass ``progress=`` by keyword, which a mere attribute check would not see); a
    backend may take more, as long as a caller that knows only the protocol need not."""
    for name in PROTOCOL_METHODS:
        expected = list(inspect.signature(getattr(ProductIndex, name)).parameters.values())
        actual = list(inspect.signature(getattr(backend, name)).parameters.values())
        where = f"{backend.__name__}.{name}"

        def shape(params: list[inspect.Parameter]) -> list[tuple[str, object, bool]]:
            return [(p.name, p.kind, p.default is inspect.Parameter.empty) for p in params]

        assert shape(actual[: len(expected)]) == shape(expected), where
        extra = actual[len(expected) :]
        assert all(p.default is not inspect.Parameter.empty for p in extra), where


def assert_keeps_the_product_index_contract(
    index: ProductIndex, products: Sequence[Product], query: str
) -> None:
    """``index`` must be empty; ``products`` at least three; ``query`` must find the first."""
    assert_signatures_match_the_protocol(type(index))
    assert isinstance(index.name, str) and index.name
    first, second = products[0], products[1]

    assert index.index(products) == len(products)
    assert index.count() == len(products)

    assert index.get(first.id) == first  # the very record that went in comes back
    assert index.get("no-such-id") is None

    results = index.search(SearchRequest(query, size=2))
    assert isinstance(results, SearchResults)
    assert first.id in results.ids and len(results.ids) <= 2
    assert [hit.rank for hit in results.hits] == list(range(1, len(results.hits) + 1))
    for hit in results.hits:
        assert hit.product == index.get(hit.product_id)

    changed = replace(second, title=f"{second.title} refreshed", price=Decimal("12.34"))
    assert index.upsert([changed]) == 1
    assert index.get(second.id) == changed
    assert index.count() == len(products)  # replaced in place, not added

    assert index.delete([first.id, "no-such-id"]) == 1  # counts only what existed
    assert index.get(first.id) is None
    assert index.count() == len(products) - 1
    assert first.id not in index.search(SearchRequest(query, size=len(products))).ids
