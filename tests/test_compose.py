"""The composed reply's lead and suggestion, on lists with and without prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from agent.conversation.compose import compose_results
from agent.conversation.constraints import Constraints
from agent.conversation.products import ShownProduct

PRICED = [
    ShownProduct(i + 1, str(i), f"Wireless Mouse {i}", "Logitech", f"{10 + i}.99") for i in range(5)
]
#: Home Depot's products are titles only: no price, no brand.
PRICELESS = [
    ShownProduct(i + 1, str(i), f"French Door Refrigerator {i}", "", None) for i in range(5)
]


def reply(constraints: Constraints, products: list[ShownProduct], **kw: Any) -> str:
    return compose_results(constraints, products, total=3761, **kw)


def test_a_priced_list_without_a_budget_asks_for_one() -> None:
    text = reply(Constraints(terms=("wireless", "mouse"), product="mouse"), PRICED)
    assert text.endswith('Tell me a budget ("under 50") to narrow it down.')


def test_a_priceless_catalog_is_never_asked_for_a_budget_nor_told_cheaper() -> None:
    wanted = Constraints(terms=("refrigerator", "french", "door"), product="door")
    text = reply(wanted, PRICELESS)
    assert "budget" not in text and "cheaper" not in text
    assert text.endswith("Add a feature (a size, a material, a colour) to narrow it down.")
    # a budget the shopper gave and the graph had to drop is not asked for again
    text = reply(
        Constraints(terms=("bucket",), product="bucket", max_price=Decimal(10)),
        PRICELESS,
        relaxed=["under $10"],
    )
    assert "budget" not in text.split(":", 1)[1]


def test_searched_as_and_the_shown_count_share_one_parenthesis() -> None:
    wanted = Constraints(terms=("refrigerator", "frenchdoor"), product="refrigerator")
    text = reply(wanted, PRICELESS, searched="refrigerator french door")
    assert text.startswith(
        "Here are the 5 best matches for refrigerator frenchdoor "
        '(searched as "refrigerator french door").'
    )
    assert text.count("(") == 2  # the lead's, and the suggestion's examples
    # the shopper's own words: no note
    text = reply(wanted, PRICELESS, searched="refrigerator frenchdoor")
    assert text.startswith("Here are the 5 best matches for refrigerator frenchdoor.")


def test_the_count_is_the_list_never_the_search_total() -> None:
    """A lexical total counts any-word matches (3,761 here): never shown."""
    text = reply(Constraints(terms=("wireless", "mouse"), product="mouse"), PRICED)
    assert "3,761" not in text and "3761" not in text
    assert text.startswith("Here are the 5 best matches for wireless mouse ($10.99 to $14.99")
    one = reply(Constraints(terms=("wireless", "mouse"), product="mouse"), PRICED[:1])
    assert one.startswith("Here is the best match for wireless mouse")


def test_a_list_with_products_of_another_type_says_closest() -> None:
    wanted = Constraints(terms=("laptop", "bag"), product="bag")
    mixed = [*PRICED[:2], ShownProduct(3, "b", "Laptop Bag 15 inch", "Targus", "29.99")]
    text = reply(wanted, mixed)
    assert text.startswith("Here are the 3 closest matches for laptop bag")
    bags = [ShownProduct(1, "b", "Laptop Bag 15 inch", "Targus", "29.99")]
    assert reply(wanted, bags).startswith("Here is the best match for laptop bag")


def test_a_price_order_is_named_only_over_prices() -> None:
    cheapest = Constraints(terms=("wireless", "mouse"), product="mouse", sort="price_asc")
    assert "sorted by price, lowest first" in reply(cheapest, PRICED)
    drills = Constraints(terms=("refrigerator",), product="refrigerator", sort="price_asc")
    text = reply(drills, PRICELESS)
    assert "sorted by price" not in text
    assert "(no prices listed, so in order of relevance)" in text
