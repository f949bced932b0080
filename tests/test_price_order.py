"""Price orders and brand lists, from the tool call to both lexical backends' results.

The order is applied once (``tools.search.price_order``) to what ``SearchToolbox.run`` gets
back, so it is tested here on the real tantivy index; the Elasticsearch side of the same path
is in tests/test_elasticsearch_contract.py (stub transport).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from agent.conversation.call_constraints import apply_to_call
from agent.conversation.constraints import Constraints
from agent.protocol.tool_search import ToolArgumentError, plan_tool_search, run_tool_search
from tests.catalog_samples import sample_products, sample_toolbox
from tools.catalog.product import Product
from tools.errors import BadInput
from tools.search.price_order import (
    MIN_SCORE_FRACTION,
    PRICE_ORDER_DEPTH,
    order_by_price,
    price_ordered,
)
from tools.search.request import SearchFilters, SearchRequest
from tools.search.results import SearchResults, ranked
from tools.search_tools import SearchToolbox


def product(pid: str, price: str | None, brand: str = "Acme") -> Product:
    return Product(
        id=pid, title=f"item {pid}", brand=brand, price=None if price is None else Decimal(price)
    )


def results(*scored: tuple[Product, float]) -> SearchResults:
    return SearchResults(hits=ranked(list(scored)), backend="test", total=len(scored))


# -- SearchFilters and SearchRequest -----------------------------------------------------------


def test_excluded_brands_never_match_whatever_the_case() -> None:
    filters = SearchFilters(excluded_brands=("sony", " "))
    assert filters.excluded_brands == ("sony",)
    assert not filters.is_empty()
    assert not filters.matches(product("a", "10", "SONY"))
    assert filters.matches(product("b", "10", "JBL"))
    assert filters.matches(product("c", "10", ""))
    both = SearchFilters(brands=("Sony", "JBL"), excluded_brands=("Sony",))
    assert [both.matches(product(p, "1", b)) for p, b in [("a", "Sony"), ("b", "JBL")]] == [
        False,
        True,
    ]


def test_filters_and_request_round_trip_with_exclusions_and_sort() -> None:
    filters = SearchFilters(brands=("Sony", "JBL"), excluded_brands=("HP",))
    request = SearchRequest("headphones", filters, size=7, sort="price_desc")
    again = SearchRequest.from_dict(request.to_dict())
    assert again == request and again.filters.excluded_brands == ("HP",)
    assert SearchFilters.from_dict({"excluded_brands": "HP"}).excluded_brands == ("HP",)
    assert SearchRequest.from_dict({"text": "x"}).sort == "relevance"  # an older record


def test_an_unknown_sort_is_refused() -> None:
    with pytest.raises(BadInput, match="unknown sort"):
        SearchRequest("mouse", sort="cheapest")


# -- the price order ---------------------------------------------------------------------------


def test_good_matches_by_price_without_a_price_last() -> None:
    found = results(
        (product("a", "30"), 10.0),
        (product("b", None), 9.0),
        (product("c", "10"), 8.0),
        (product("d", "20"), 7.0),
        (product("junk", "1"), 10.0 * MIN_SCORE_FRACTION - 0.1),  # a one-word match
    )
    cheap = order_by_price(found, "price_asc", size=10)
    assert cheap.ids == ["c", "d", "a", "b"]
    assert [hit.rank for hit in cheap.hits] == [1, 2, 3, 4]
    assert cheap.detail == {"sort": "price_asc", "price_pool": 4}
    assert order_by_price(found, "price_desc", size=2).ids == ["a", "d"]
    assert order_by_price(found, "relevance", size=2).ids == ["a", "b"]


def test_equal_prices_keep_their_relevance_order() -> None:
    found = results(*[(product(str(i), "5"), 10.0 - i) for i in range(4)])
    assert order_by_price(found, "price_asc", size=4).ids == ["0", "1", "2", "3"]


def test_a_price_order_fetches_the_pool_and_cuts_to_size() -> None:
    asked: list[SearchRequest] = []

    def search(request: SearchRequest) -> SearchResults:
        asked.append(request)
        hits = [(product(str(i), str(100 - i)), 1.0) for i in range(request.size)]
        return results(*hits)

    ordered = price_ordered(SearchRequest("x", size=3, sort="price_asc"), search)
    assert [(r.size, r.sort) for r in asked] == [(PRICE_ORDER_DEPTH, "relevance")]
    # the cheapest of the pool, which the top 3 by relevance did not hold
    assert ordered.ids == [str(PRICE_ORDER_DEPTH - 1 - i) for i in range(3)]
    asked.clear()
    price_ordered(SearchRequest("x", size=3), search)
    assert [(r.size, r.sort) for r in asked] == [(3, "relevance")]


# -- on the real tantivy index, through the toolbox --------------------------------------------


@pytest.fixture()
def toolbox(tmp_path: Path) -> SearchToolbox:
    return sample_toolbox(tmp_path / "home")


def prices(found: SearchResults) -> list[Decimal | None]:
    return [hit.product.price for hit in found.hits]


def test_tantivy_price_order_keeps_the_requested_type(toolbox: SearchToolbox) -> None:
    plain = toolbox.run("lexical", SearchRequest("gaming mouse", title_match=True))
    assert "k1" in plain.ids  # "gaming" alone matches the keyboard...
    cheap = toolbox.run(
        "lexical", SearchRequest("gaming mouse", title_match=True, sort="price_asc")
    )
    assert cheap.ids == ["m1", "m2"]  # ... which a price order does not show
    assert prices(cheap) == sorted(prices(cheap))
    dear = toolbox.run("lexical", SearchRequest("mouse", sort="price_desc", size=2))
    assert dear.ids == ["m3", "m2"]


def test_tantivy_excludes_brands_like_the_reference(toolbox: SearchToolbox) -> None:
    filters = SearchFilters(excluded_brands=("LOGITECH", "corsair"))
    found = toolbox.run("lexical", SearchRequest("mouse keyboard gaming", filters=filters))
    expected = {
        p.id for p in sample_products() if filters.matches(p) and p.id in {"m1", "m2", "m3", "k1"}
    }
    assert set(found.ids) == expected == {"m2"}
    browse = toolbox.run(
        "lexical", SearchRequest("", filters=SearchFilters(excluded_brands=("x",)))
    )
    assert len(browse.ids) == len(sample_products())  # an exclusion alone browses the rest


# -- the tool call -----------------------------------------------------------------------------


def test_the_tool_reads_sort_brand_lists_and_exclusions(toolbox: SearchToolbox) -> None:
    search = plan_tool_search(
        "search_products",
        {
            "query": "mouse",
            "brand": ["Logitech", "razer", "LOGITECH", " "],
            "exclude_brands": "Corsair",
            "sort": "Price_Asc",
        },
        size=5,
    )
    assert search.request.filters.brands == ("Logitech", "razer")
    assert search.request.filters.excluded_brands == ("Corsair",)
    assert search.request.sort == "price_asc"
    assert search.arguments["brand"] == ["Logitech", "razer"]
    assert search.arguments["exclude_brands"] == ["Corsair"]
    assert search.arguments["sort"] == "price_asc" and not search.ignored
    assert run_tool_search(search, toolbox).ids == ["m1", "m2", "m3"]
    plain = plan_tool_search("search_products", {"query": "mouse", "sort": ""}, size=5)
    assert plain.request.sort == "relevance" and "sort" not in plain.arguments


def test_the_tool_refuses_an_unknown_sort() -> None:
    with pytest.raises(ToolArgumentError, match="sort must be one of"):
        plan_tool_search("search_products", {"query": "mouse", "sort": "cheap"}, size=5)


def test_the_state_gives_every_search_its_brands_exclusions_and_order() -> None:
    state = Constraints(
        terms=("mouse",),
        product="mouse",
        brands=("Logitech", "Razer"),
        excluded_brands=("HP",),
        sort="price_desc",
    )
    model = {"query": "mouse", "brand": "HP", "sort": "price_asc", "exclude_brands": ["Razer"]}
    args = apply_to_call(model, state)
    assert args["brand"] == ["Logitech", "Razer"]
    assert args["exclude_brands"] == ["HP"] and args["sort"] == "price_desc"
    one = apply_to_call({"query": "mouse", "sort": "price_asc"}, Constraints(brands=("Sony",)))
    assert one == {"query": "mouse", "brand": "Sony"}  # relevance: the model's order is dropped
    concepts = apply_to_call({"concepts": ["mouse"]}, state)
    assert "sort" not in concepts and "exclude_brands" not in concepts  # not concept arguments
