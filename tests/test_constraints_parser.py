"""``agent.conversation.constraints.update_constraints``: how each shopper message folds into the
conversation's constraints.

Each case is a conversation (the shopper's messages in order) and what the constraints must
be after its last message, against a small catalog's facets (brands and categories are matched
against those, never a list in the code). "cheaper" / "more expensive" are relative to the
prices shown last, here $10, $20, $30, $40, $50 (median $30).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest

from agent.conversation.constraints import Constraints, Update, update_constraints
from tools.search.facets import Facets, FacetValue

FACETS = Facets.of(
    [
        FacetValue(name, 3)
        for name in ("Sony", "Logitech", "HP", "Bose", "JBL", "Samsung", "Western Digital")
    ],
    [FacetValue(name, 3) for name in ("Mice", "Headphones", "Monitors", "Laptops")],
)
SHOWN = tuple(Decimal(p) for p in ("10", "20", "30", "40", "50"))


def fold(messages: Sequence[str], shown: Sequence[Decimal] = SHOWN) -> Update:
    """The last message's update, after the earlier ones (each sees ``shown`` prices)."""
    state = Constraints()
    update = Update(state)
    for message in messages:
        update = update_constraints(state, message, FACETS, shown_prices=shown)
        state = update.constraints
    return update


def d(value: str) -> Decimal:
    return Decimal(value)


@pytest.mark.parametrize(
    ("messages", "low", "high"),
    [
        (["wireless mouse under 30 dollars"], None, d("30")),
        (["headphones between 20 and 40"], d("20"), d("40")),
        (["a laptop that should not cost more than 800 dollars"], None, d("800")),
        (["64gb usb stick under 20 euros"], None, d("20")),
        # a later limit on the other side keeps the first: a range
        (["headphones under 50", "over $20"], d("20"), d("50")),
        (["headphones over $20", "under 50"], d("20"), d("50")),
        # ... unless the two cannot both hold: the new one wins
        (["headphones under $50", "at least $60"], d("60"), None),
        # a weak cue without a currency is not a price ("over 20" could be anything)
        (["headphones under 50", "over 20"], None, d("50")),
        # "cheaper": below the median shown; a floor that still fits stays
        (["wireless mouse", "cheaper"], None, d("29.99")),
        (["wireless mouse over $15", "cheaper"], d("15"), d("29.99")),
        (["wireless mouse", "too expensive"], None, d("29.99")),
        # "more expensive": above the median; a ceiling below it goes
        (["wireless mouse", "more expensive"], d("30.01"), None),
        (["wireless mouse under 25", "more expensive"], d("30.01"), None),
        # dropping the budget
        (["headphones under 50", "no budget"], None, None),
        (["headphones under 50", "money is no object"], None, None),
        (["headphones under 50", "start over"], None, None),
    ],
)
def test_price_limits_fold_into_the_constraints(
    messages: list[str], low: Decimal | None, high: Decimal | None
) -> None:
    state = fold(messages).constraints
    assert (state.min_price, state.max_price) == (low, high)


def test_cheaper_needs_prices_shown() -> None:
    """Nothing shown yet: "cheaper" has nothing to be cheaper than, so no limit appears."""
    update = fold(["wireless mouse", "cheaper"], shown=())
    assert (update.constraints.min_price, update.constraints.max_price) == (None, None)
    assert update.changes == []


@pytest.mark.parametrize(
    ("messages", "brands", "excluded"),
    [
        (["sony headphones"], ("Sony",), ()),
        (["headphones", "only sony"], ("Sony",), ()),
        (["headphones", "just bose"], ("Bose",), ()),
        (["headphones", "not sony"], (), ("Sony",)),
        (["headphones", "anything but JBL"], (), ("JBL",)),
        (["headphones", "without samsung"], (), ("Samsung",)),
        # a named brand replaces the wanted one; an excluded one leaves the wanted list
        (["sony headphones", "samsung"], ("Samsung",), ()),
        (["bose headphones", "not bose"], (), ("Bose",)),
        # ... and wanting it again takes it off the excluded list
        (["headphones", "not sony", "only sony"], ("Sony",), ()),
        # two-word brands, any case; one slip in a long brand is still found
        (["a 2 tb western digital drive"], ("Western Digital",), ()),
        (["logitec mouse"], ("Logitech",), ()),
        # a person, not a brand
        (["a gift for my hp"], (), ()),
    ],
)
def test_brands_are_wanted_or_excluded(
    messages: list[str], brands: tuple[str, ...], excluded: tuple[str, ...]
) -> None:
    state = fold(messages).constraints
    assert (state.brands, state.excluded_brands) == (brands, excluded)


@pytest.mark.parametrize(
    ("messages", "terms", "product", "new_product"),
    [
        (["wireless mouse under 30 dollars"], ("wireless", "mouse"), "mouse", True),
        # the product type is the last content word before its use
        (
            ["a 27 inch monitor for photo editing"],
            ("monitor", "photo", "editing"),
            "monitor",
            True,
        ),
        (["iphone 7 case"], ("iphone", "7", "case"), "case", True),
        (["mouse", "I want a keyboard instead"], ("keyboard",), "keyboard", True),
        # filler names nothing
        (["a gift for my dad"], (), "", False),
        # no content words: the product stays
        (["wireless mouse", "cheaper"], ("wireless", "mouse"), "mouse", False),
        (["headphones", "only sony"], ("headphones",), "headphones", False),
        # a pronoun: the words describe the product already sought
        (["a mouse", "a wireless one"], ("mouse",), "mouse", False),
        (["headphones under 50", "start over"], (), "", False),
    ],
)
def test_what_is_sought(
    messages: list[str], terms: tuple[str, ...], product: str, new_product: bool
) -> None:
    update = fold(messages)
    assert (update.constraints.terms, update.constraints.product) == (terms, product)
    assert update.new_product is new_product


@pytest.mark.parametrize(
    ("message", "terms", "product"),
    [
        # greetings, request idioms and ages are how a message asks, not what it wants
        ("hi there! do you have hdmi cables?", ("hdmi", "cables"), "cables"),
        (
            "good morning, looking for noise cancelling headphones for flights please",
            ("noise", "cancelling", "headphones", "flights"),
            "headphones",
        ),
        (
            "im shopping for a 27 inch monitor for photo editing",
            ("monitor", "photo", "editing"),
            "monitor",
        ),
        ("trying to find a cordless drill for my garage", ("cordless", "drill", "garage"), "drill"),
        ("hi! 10 year old video games nothing too expensive", ("video", "games"), "games"),
        ("a gift for my 8 year old who loves dinosaurs", ("dinosaurs",), ""),
        ("yo need new earbuds asap lol", ("earbuds",), "earbuds"),
        ("hello i want to buy a vacuum", ("vacuum",), "vacuum"),
        ("thanks!", (), ""),
        # a product that starts like a greeting stays whole
        ("hi-fi speakers", ("hi-fi", "speakers"), "speakers"),
        ("hey, hi-fi speakers please", ("hi-fi", "speakers"), "speakers"),
    ],
)
def test_chatter_never_becomes_the_product(
    message: str, terms: tuple[str, ...], product: str
) -> None:
    constraints = update_constraints(Constraints(), message).constraints
    assert (constraints.terms, constraints.product) == (terms, product)


@pytest.mark.parametrize(
    ("messages", "attributes", "exclusions"),
    [
        (["headphones with bluetooth"], ("bluetooth",), ()),
        (["a 27 inch monitor"], ("27 inch",), ()),
        (["64gb usb stick"], ("64gb",), ()),
        (["a speaker without bluetooth"], (), ("bluetooth",)),
        (["headphones with bluetooth", "without cable"], ("bluetooth",), ("cable",)),
        (["a mouse", "a wireless one"], ("wireless",), ()),
        # ruling out a feature asked for earlier removes it
        (["headphones with bluetooth", "no bluetooth"], (), ("bluetooth",)),
    ],
)
def test_features_and_exclusions(
    messages: list[str], attributes: tuple[str, ...], exclusions: tuple[str, ...]
) -> None:
    state = fold(messages).constraints
    assert (state.attributes, state.exclusions) == (attributes, exclusions)


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        # the same product type keeps the budget and the brand
        (["wireless mouse under 60", "gaming mouse"], "gaming mouse · under $60"),
        (
            ["headphones under 50", "noise cancelling headphones"],
            "noise cancelling headphones · under $50",
        ),
        # a new type drops the price limit and category set for the last one...
        (["headphones under 50", "a laptop"], "laptop"),
        (["headphones under 50", "in Headphones", "a laptop"], "laptop"),
        # ... unless the message restates one
        (["headphones under 50", "a speaker under 80"], "speaker · under $80"),
        # brands carry over: a preference, not a limit for one product
        (["sony headphones", "a speaker"], "speaker · Sony"),
        (["headphones", "not bose", "a speaker"], "speaker · not Bose"),
    ],
)
def test_a_new_product_type_drops_the_limits_set_for_the_last_one(
    messages: list[str], expected: str
) -> None:
    assert fold(messages).constraints.describe() == expected


@pytest.mark.parametrize(
    ("messages", "changes"),
    [
        (["wireless mouse under 30"], ["price under $30", "looking for wireless mouse"]),
        (["headphones", "not sony"], ["not Sony"]),
        (["wireless mouse", "cheaper"], ["cheaper: under $29.99"]),
        (["headphones under 50", "no budget"], ["no price limit"]),
        (
            ["headphones under 50", "a laptop"],
            ["looking for laptop", "new product: price limit under $50 dropped"],
        ),
        (["headphones under 50", "start over"], ["restart"]),
    ],
)
def test_the_changes_name_what_the_message_did(messages: list[str], changes: list[str]) -> None:
    assert fold(messages).changes == changes


def test_a_category_is_taken_only_when_named_as_one() -> None:
    assert fold(["headphones"]).constraints.category is None  # a product word stays a word
    assert fold(["headphones", "in Headphones"]).constraints.category == "Headphones"
    assert fold(["a mouse from the Mice section"]).constraints.category == "Mice"


@pytest.mark.parametrize(
    ("messages", "terms", "low", "high"),
    [
        pytest.param(
            ["headphones under 50", "any price is fine"],
            ("headphones",),
            None,
            None,
            marks=pytest.mark.xfail(
                strict=True, reason="'fine' is not filler: it becomes a new product 'fine'"
            ),
        ),
        pytest.param(
            ["headphones in the Headphones category"],
            ("headphones",),
            None,
            None,
            marks=pytest.mark.xfail(
                strict=True, reason="'category' is not filler: the product type is 'category'"
            ),
        ),
    ],
)
def test_known_misreadings(
    messages: list[str], terms: tuple[str, ...], low: Decimal | None, high: Decimal | None
) -> None:
    state = fold(messages).constraints
    assert (state.terms, state.min_price, state.max_price) == (terms, low, high)


# -- the order ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "sort"),
    [
        (["wireless mouse", "the cheapest"], "price_asc"),
        (["wireless mouse", "cheapest first please"], "price_asc"),
        (["wireless mouse", "lowest price first"], "price_asc"),
        (["wireless mouse", "sort by price"], "price_asc"),
        (["the cheapest wireless mouse"], "price_asc"),
        (["wireless mouse", "most expensive"], "price_desc"),
        (["wireless mouse", "highest price first"], "price_desc"),
        (["wireless mouse", "sort by price, high to low"], "price_desc"),
        # it carries over turns that keep the product type...
        (["wireless mouse", "the cheapest", "only Logitech"], "price_asc"),
        (["wireless mouse", "most expensive", "gaming mouse"], "price_desc"),
        # ... until "by relevance" / "best match" or a new product type
        (["wireless mouse", "the cheapest", "sort by relevance"], "relevance"),
        (["wireless mouse", "the cheapest", "best match first"], "relevance"),
        (["wireless mouse", "the cheapest", "headphones"], "relevance"),
        (["wireless mouse", "headphones, cheapest first"], "price_asc"),
        (["wireless mouse", "the cheapest", "start over"], "relevance"),
    ],
)
def test_the_order_is_read_and_carried(messages: list[str], sort: str) -> None:
    assert fold(messages).constraints.sort == sort


@pytest.mark.parametrize(
    "message", ["the cheapest", "lowest price first", "sort by price", "most expensive first"]
)
def test_an_order_is_no_product_and_no_price_limit(message: str) -> None:
    state = fold(["wireless mouse under $40", message]).constraints
    assert state.terms == ("wireless", "mouse")
    assert (state.min_price, state.max_price) == (None, d("40"))


def test_cheaper_is_still_a_limit_and_keeps_the_order() -> None:
    state = fold(["wireless mouse", "the cheapest", "cheaper"]).constraints
    assert state.sort == "price_asc"
    assert state.max_price == d("29.99")
    assert fold(["wireless mouse", "cheaper"]).constraints.sort == "relevance"


def test_the_order_survives_a_checkpoint_and_is_described() -> None:
    state = fold(["wireless mouse under $40", "the cheapest"]).constraints
    assert Constraints.from_dict(state.to_dict()) == state
    assert state.describe() == "wireless mouse · under $40 · sorted by price, lowest first"
    assert state.describe(order=False) == "wireless mouse · under $40"
    dear = fold(["wireless mouse", "most expensive"]).constraints
    assert dear.describe() == "wireless mouse · sorted by price, highest first"
    assert Constraints.from_dict({**state.to_dict(), "sort": "random"}).sort == "relevance"


# -- several brands, excluded brands -----------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "wanted", "unwanted", "terms"),
    [
        (["headphones", "Sony or Samsung"], ("Sony", "Samsung"), (), ("headphones",)),
        (["sony or samsung headphones"], ("Sony", "Samsung"), (), ("headphones",)),
        (["headphones", "either Bose, JBL or Sony"], ("Bose", "JBL", "Sony"), (), ("headphones",)),
        (["headphones", "not Sony"], (), ("Sony",), ("headphones",)),
        (["laptop", "no HP"], (), ("HP",), ("laptop",)),
        (["mouse", "except Logitech"], (), ("Logitech",), ("mouse",)),
        (["mouse", "anything but Logitech or HP"], (), ("Logitech", "HP"), ("mouse",)),
        (["headphones", "I don't want Sony"], (), ("Sony",), ("headphones",)),
        (["headphones", "Sony or Bose", "not Sony"], ("Bose",), ("Sony",), ("headphones",)),
        # carried across a new product of the same kind and a price change
        (["headphones", "not JBL", "wireless headphones under $80"], (), ("JBL",), None),
        (["headphones", "Bose or Sony", "cheaper"], ("Bose", "Sony"), (), ("headphones",)),
    ],
)
def test_several_brands_and_exclusions(
    messages: list[str],
    wanted: tuple[str, ...],
    unwanted: tuple[str, ...],
    terms: tuple[str, ...] | None,
) -> None:
    state = fold(messages).constraints
    assert (state.brands, state.excluded_brands) == (wanted, unwanted)
    if terms is not None:
        assert state.terms == terms  # no negation word left behind as a product


@pytest.mark.parametrize("message", ["only dewalt", "just dewalt", "dewalt only", "made by dewalt"])
def test_only_a_brand_the_catalog_lacks_refines_the_product(message: str) -> None:
    """Home Depot has no brand field (no brand facets): the brand word joins the product."""
    state = Constraints()
    for text in ("cordless drill", message):
        state = update_constraints(state, text, Facets()).constraints
    assert state.terms == ("cordless", "drill") and state.product == "drill"
    assert state.attributes == ("dewalt",)
    assert state.query() == "cordless drill dewalt"


def test_just_a_new_product_is_still_a_new_product() -> None:
    state = Constraints()
    for text in ("cordless drill", "just a hammer"):
        state = update_constraints(state, text, Facets()).constraints
    assert state.product == "hammer"
