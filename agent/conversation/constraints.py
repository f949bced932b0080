"""What the shopper is after, as structured constraints carried from turn to turn.

A 135M model cannot keep track of a conversation, so the graph does: each message updates a
``Constraints`` value (kept in the checkpointed state), and every search of the turn runs with
it, whatever the model wrote. ``update_constraints`` reads the shopper's own words:

- prices (``agent.conversation.prices``: negations, ranges, "around", other languages),
  and "cheaper" / "more expensive": below / above the median price shown last;
- the order: "the cheapest", "lowest price first", "sort by price" rank the good matches by
  price, lowest first; "most expensive", "highest price first", "price high to low" highest
  first (``tools.search.price_order``). "The cheapest" is an order, "cheaper" a price limit.
  The order holds across turns until "by relevance" / "best match" or a new product type;
- brands and categories, matched against the catalog's own facet values
  (``agent.conversation.facet_matches``), never a list in the code; a brand typed with one slip
  ("logitec") is still found; "only X" / "X" / "X or Y" replace the brands (any of them will
  do), "not X" / "no X" / "except X" / "anything but X or Y" exclude them; the search gets
  every wanted and every excluded brand;
- features: "with X", "that has X" and measurements ("27 inch", "64GB") become attributes;
  "without X" / "no X" an exclusion;
- content words: what remains once filler ("I'm looking for", "please", "a gift for my dad")
  is gone. New content words start a new product (its terms and features); brands and
  excluded brands carry over (a preference), and so do prices and the category while the
  product type stays ("wireless mouse under 30", then "gaming mouse"); a new product type
  ("headphones under 50", then "a laptop") drops the price limit and category the message
  did not restate, since they were set for another kind of product. A message with no
  content words ("cheaper", "only Logitech", "something with bluetooth") keeps the product;
  a pronoun ("a wireless one") adds them as features instead, and so does "only X" / "just
  X" when X is no brand the catalog knows (Home Depot has no brand field: "only dewalt" after
  "cordless drill" searches "cordless drill dewalt", not "dewalt");
- "start over" (or ``/clear``) drops everything.

The model's tool arguments may add a brand, category or price only when the shopper named it
(a small model invents filters), and the state always wins over the call: see
``agent.conversation.call_constraints``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from agent.conversation.facet_matches import brands_in, category_in
from agent.conversation.message_words import FILLER, NEGATION, plain_words, without_chatter
from agent.conversation.prices import price_bounds, without_prices, words_to_digits
from agent.conversation.products import ShownProduct
from tools.catalog.product import Product, price_or_none
from tools.search.facets import Facets
from tools.search.request import PRICE_ASC, PRICE_DESC, RELEVANCE, SORTS
from tools.search.spelling import edit_distance, max_edits

#: Where the product's name ends and its use begins ("a monitor for photo editing").
_USE = re.compile(r"\b(?:for|to|that|which|who|so|because)\b", re.I)
#: A pronoun standing for the product already sought: its content words are features.
_PRONOUN = re.compile(r"\b(?:one|ones|it|them|those|these)\b", re.I)
_RESTART = re.compile(
    r"\b(?:start(?:ing)?\s+(?:over|again|afresh)|from\s+scratch|new\s+search|reset|"
    r"forget\s+(?:it|that|everything|all\s+that))\b",
    re.I,
)
_NO_BUDGET = re.compile(
    r"\b(?:any\s+price|no\s+budget|price\s+(?:doesn't|does\s+not|don't)\s+matter|"
    r"whatever\s+(?:it\s+)?costs?|money\s+is\s+no\s+object)\b",
    re.I,
)
_CHEAPER = re.compile(
    r"\b(?:cheaper|less\s+expensive|lower\s+price[ds]?|more\s+affordable|too\s+expensive|"
    r"too\s+pricey|moins\s+cher|billiger|g[üu]nstiger|m[áa]s\s+barato)\b",
    re.I,
)
_PRICIER = re.compile(
    r"\b(?:more\s+expensive|pricier|higher[\s-]end|high[\s-]end|premium|too\s+cheap|"
    r"plus\s+cher|teurer|m[áa]s\s+caro)\b",
    re.I,
)
_WITH = re.compile(
    r"\b(?:with|has|having|have|supports?|supporting|including|featuring|avec|mit|con)\s+"
    r"(?:a\s+|an\s+|the\s+|some\s+|built[\s-]in\s+)?"
    r"(?P<what>[\w.+\"-]+(?:\s+[\w.+\"-]+){0,2})",
    re.I,
)
_WITHOUT = re.compile(
    rf"\b(?:{NEGATION})\s+"
    r"(?:a\s+|an\s+|the\s+|any\s+)?(?P<what>[\w+-]{3,})",
    re.I,
)
#: "the cheapest" / "lowest price first": the good matches by price, lowest first.
_BY_PRICE = r"(?:sort(?:ed)?|order(?:ed)?|rank(?:ed)?|list(?:ed)?)\s+(?:them\s+|it\s+)?by\s+price"
_HIGHEST_FIRST = re.compile(
    rf"\b(?:(?:the\s+)?most\s+expensive(?:\s+(?:first|ones?))?|(?:the\s+)?priciest|"
    r"highest[\s-]price[ds]?(?:\s+first)?|(?:price\s+)?high(?:est)?\s+to\s+low(?:est)?|"
    rf"{_BY_PRICE}\s*,?\s*(?:descending|desc|highest\s+first|high\s+to\s+low))\b",
    re.I,
)
_LOWEST_FIRST = re.compile(
    rf"\b(?:(?:the\s+)?cheapest(?:\s+(?:first|ones?))?|(?:the\s+)?least\s+expensive|"
    r"lowest[\s-]price[ds]?(?:\s+first)?|(?:price\s+)?low(?:est)?\s+to\s+high(?:est)?|"
    rf"{_BY_PRICE}(?:\s*,?\s*(?:ascending|asc|lowest\s+first|low\s+to\s+high))?)\b",
    re.I,
)
_BY_RELEVANCE = re.compile(
    r"\b(?:(?:sort(?:ed)?|order(?:ed)?|rank(?:ed)?)?\s*by\s+relevance|most\s+relevant(?:\s+first)?|"
    r"best\s+match(?:es|ing)?(?:\s+first)?)\b",
    re.I,
)
#: "only dewalt", "just bosch", "dewalt only": a restriction of the product already sought.
_ONLY = re.compile(
    r"^\W*(?:(?:ok(?:ay)?|please|and|but|so|well|hmm)\W+)*(?:only|just|exclusively|made\s+by)\s+"
    r"(?!(?:a|an|the|some|any)\b)|\b(?:only|exclusively)\W*$",
    re.I,
)
#: Where a "with X" phrase ends.
_PHRASE_END = re.compile(
    r"\b(?:and|or|under|below|over|for|from|that|which|please|but|at|in|to|than|by)\b.*$", re.I
)
#: A measure's number: ``27``, ``2.5``, a fraction ``1/2`` or a mixed ``1-1/2`` / ``1 1/2``.
_MEASURE = re.compile(
    r"\b(\d+(?:[-\s]\d+/\d+|[.,/]\d+)?)\s*[-\s]?\s*(inch(?:es)?|in\b|\"|”|''|cm|mm|gb|tb|mb|ghz|mhz|hz|"
    r"w\b|watts?|mah|mp|megapixels?|k\b|p\b|dpi|port|ports|tb)(?=\W|$)",
    re.I,
)
_CENT = Decimal("0.01")
#: How the shopper reads an order (``Constraints.describe``, the reply's first line).
_ORDER_WORDS = {
    PRICE_ASC: "sorted by price, lowest first",
    PRICE_DESC: "sorted by price, highest first",
}
#: Only this much of a message is read for constraints (a request is a sentence or two).
MAX_MESSAGE_CHARS = 1000


@dataclass(frozen=True, slots=True)
class Constraints:
    """What the shopper wants, as the search needs it. Immutable, prices exact (``Decimal``);
    the checkpoint keeps it as it is (``to_dict`` / ``from_dict`` are its JSON form)."""

    #: Content words of the product sought, in the shopper's order ("wireless", "mouse").
    terms: tuple[str, ...] = ()
    #: The product type: the last content word before "for", "to", "that"... ("a 27 inch
    #: monitor for photo editing" -> "monitor"); empty when those words are all filler.
    #: Every query carries it, and shown products name it when any result does.
    product: str = ""
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    #: Wanted brands, as the catalog spells them (a filter when there is one).
    brands: tuple[str, ...] = ()
    excluded_brands: tuple[str, ...] = ()
    #: A category level the catalog has ("Mice"), when the shopper named one.
    category: str | None = None
    #: Features asked for: "bluetooth", "27 inch", "64gb". Searched as words.
    attributes: tuple[str, ...] = ()
    #: Words ruled out ("without cable" -> "cable"): a product mentioning one is not shown.
    exclusions: tuple[str, ...] = ()
    #: The order results are shown in: ``relevance``, ``price_asc`` or ``price_desc``
    #: (``tools.search.request.SORTS``); every search of the turn runs with it.
    sort: str = RELEVANCE

    def __post_init__(self) -> None:
        # read back from a checkpoint, the word lists are lists: equal values must compare equal
        for name in ("terms", "brands", "excluded_brands", "attributes", "exclusions"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))

    def names_product(self, product: Product | ShownProduct | None) -> bool:
        """Does a product's title or category name the product type ("headphone" for
        "headphones", "mouse" for "mouse")? True when no type is known."""
        if not self.product:
            return True
        if product is None:
            return False
        stem = self.product[: max(4, len(self.product) - 2)]
        categories = getattr(product, "category_path", None) or [product.category]
        text = f"{product.title} {' '.join(categories)}"
        return re.search(rf"\b{re.escape(stem)}", text.lower()) is not None

    def is_empty(self) -> bool:
        return self == Constraints()

    def has_filters(self) -> bool:
        return bool(
            self.brands or self.category or self.min_price is not None or self.max_price is not None
        )

    def query(self) -> str:
        """The words the graph searches when the model writes no usable query: the product
        words and features, or for a bare "dell" / "only Logitech" the brand or category."""
        words = [*self.terms, *self.attributes] or [*self.brands, self.category or ""]
        return " ".join(dict.fromkeys(w for w in words if w))

    def searchable(self) -> bool:
        """Is there anything to search for (else the graph asks what the shopper wants)?"""
        return bool(self.query())

    def describe(self, *, order: bool = True) -> str:
        """One line for the shopper: ``mouse · bluetooth · Logitech · under $20``, then the
        order when it is by price (``order``: a reply about no results leaves it out)."""
        parts = [" ".join(self.terms)] if self.terms else []
        parts.extend(self.attributes)
        if self.brands:
            parts.append(" or ".join(self.brands))
        if self.category:
            parts.append(f"in {self.category}")
        price = describe_price(self.min_price, self.max_price)
        if price:
            parts.append(price)
        if order and self.sort in _ORDER_WORDS:
            parts.append(_ORDER_WORDS[self.sort])
        parts.extend(f"not {brand}" for brand in self.excluded_brands)
        parts.extend(f"without {word}" for word in self.exclusions)
        return " · ".join(p for p in parts if p)

    def allows(self, product: Product | ShownProduct) -> bool:
        """Does a product (found, or shown) respect every hard constraint?"""
        brand = str(product.brand or "").lower()
        if self.brands and brand not in {b.lower() for b in self.brands}:
            return False
        if brand and brand in {b.lower() for b in self.excluded_brands}:
            return False
        price = price_or_none(product.price)
        if self.min_price is not None and (price is None or price < self.min_price):
            return False
        if self.max_price is not None and (price is None or price > self.max_price):
            return False
        if self.exclusions:
            title = " ".join(plain_words(str(product.title or "")))
            if any(re.search(rf"\b{re.escape(word)}\b", title) for word in self.exclusions):
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "terms": list(self.terms),
            "product": self.product,
            "min_price": None if self.min_price is None else str(self.min_price),
            "max_price": None if self.max_price is None else str(self.max_price),
            "brands": list(self.brands),
            "excluded_brands": list(self.excluded_brands),
            "category": self.category,
            "attributes": list(self.attributes),
            "exclusions": list(self.exclusions),
            "sort": self.sort,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Constraints:
        data = data or {}
        return cls(
            terms=tuple(data.get("terms") or ()),
            product=str(data.get("product") or ""),
            min_price=price_or_none(data.get("min_price")),
            max_price=price_or_none(data.get("max_price")),
            brands=tuple(data.get("brands") or ()),
            excluded_brands=tuple(data.get("excluded_brands") or ()),
            category=data.get("category") or None,
            attributes=tuple(data.get("attributes") or ()),
            exclusions=tuple(data.get("exclusions") or ()),
            sort=_known_sort(data.get("sort")),
        )


@dataclass(frozen=True, slots=True)
class Update:
    """A message's effect on the constraints."""

    constraints: Constraints
    #: What changed, for the trajectory ("max_price 20", "brand Logitech", "restart").
    changes: list[str] = field(default_factory=list)
    #: The message named a new product (its content words replaced the terms).
    new_product: bool = False


def update_constraints(
    current: Constraints,
    text: str,
    facets: Facets | None = None,
    shown_prices: Sequence[Decimal] = (),
) -> Update:
    """Fold one shopper message into the constraints (see the module docstring)."""
    facets = facets or Facets()
    changes: list[str] = []
    message = without_chatter(words_to_digits(" ".join(text[:MAX_MESSAGE_CHARS].split())))
    if _RESTART.search(message):
        current = Constraints()
        changes.append("restart")
        message = _RESTART.sub(" ", message)
    state = current
    # -- prices -------------------------------------------------------------------------
    bounds = price_bounds(message)
    rest = without_prices(message)
    if _NO_BUDGET.search(rest):
        state = replace(state, min_price=None, max_price=None)
        changes.append("no price limit")
        rest = _NO_BUDGET.sub(" ", rest)
    if not bounds.is_empty():
        low, high = bounds.min_price, bounds.max_price
        if low is None and state.min_price is not None and high is not None:
            low = state.min_price if state.min_price <= high else None
        if high is None and state.max_price is not None and low is not None:
            high = state.max_price if state.max_price >= low else None
        state = replace(state, min_price=low, max_price=high)
        changes.append(f"price {describe_price(low, high)}")
    elif _CHEAPER.search(rest) and shown_prices:
        high = max(_median(shown_prices) - _CENT, Decimal(0))
        low = state.min_price if state.min_price is not None and state.min_price <= high else None
        state = replace(state, max_price=high, min_price=low)
        changes.append(f"cheaper: {describe_price(low, high)}")
    elif _PRICIER.search(rest) and shown_prices:
        low = _median(shown_prices) + _CENT
        high = state.max_price if state.max_price is not None and state.max_price >= low else None
        state = replace(state, min_price=low, max_price=high)
        changes.append(f"more expensive: {describe_price(low, high)}")
    # a restated budget, or any change to it ("no budget", "cheaper"): this message priced it
    priced_here = not bounds.is_empty() or (state.min_price, state.max_price) != (
        current.min_price,
        current.max_price,
    )
    rest = _CHEAPER.sub(" ", _PRICIER.sub(" ", rest))
    # -- the order ------------------------------------------------------------------------
    sort, rest = sort_in(rest)
    if sort is not None and sort != state.sort:
        state = replace(state, sort=sort)
        changes.append(f"order {sort}")
    # -- brands and categories ----------------------------------------------------------
    restricts = bool(_ONLY.search(rest))
    rest = _ONLY.sub(" ", rest)  # "made by" is no product word
    rest, wanted, unwanted = brands_in(rest, facets)
    if wanted:
        state = replace(
            state,
            brands=tuple(wanted),
            excluded_brands=tuple(b for b in state.excluded_brands if b not in wanted),
        )
        changes.append(f"brand {' or '.join(wanted)}")
    if unwanted:
        state = replace(
            state,
            brands=tuple(b for b in state.brands if b not in unwanted),
            excluded_brands=tuple(dict.fromkeys([*state.excluded_brands, *unwanted])),
        )
        changes.append(f"not {', '.join(unwanted)}")
    category = category_in(rest, facets)
    if category and category != state.category:
        state = replace(state, category=category)
        changes.append(f"category {category}")
    # -- features and exclusions --------------------------------------------------------
    excluded = [m.group("what").lower() for m in _WITHOUT.finditer(rest)]
    excluded = [w for w in excluded if w not in FILLER and not w.isdigit()]
    rest = _WITHOUT.sub(" ", rest)
    features: list[str] = []
    for match in _WITH.finditer(rest):
        phrase = _PHRASE_END.sub("", match.group("what"))
        words = [w for w in plain_words(phrase) if w not in FILLER]
        if words:
            features.append(" ".join(words))
    rest = _WITH.sub(" ", rest)
    for match in _MEASURE.finditer(rest):
        features.append(_measure(match))
    rest = _MEASURE.sub(" ", rest)
    # numbers left once prices and measurements are gone are model numbers ("iphone 7")
    content = [w for w in plain_words(rest) if w not in FILLER]
    head = [w for w in plain_words(_USE.split(rest)[0]) if w in content]
    # -- what is sought ----------------------------------------------------------------
    named = [w for w in content if not _is_number(w)]
    # a pronoun ("a wireless one") or "only X" refines the product sought, never replaces it
    new_product = bool(named) and not (state.terms and (_PRONOUN.search(rest) or restricts))
    if new_product:
        previous = state.product
        state = replace(
            state,
            terms=tuple(dict.fromkeys(content)),
            # unknown when the head is all filler ("something to listen to music outdoors")
            product=next((w for w in reversed(head) if not _is_number(w)), ""),
            attributes=tuple(dict.fromkeys(features)),
            exclusions=tuple(dict.fromkeys(excluded)),
        )
        changes.append(f"looking for {' '.join(state.terms)}")
        if previous and state.product and not same_word(state.product, previous):
            state = _forget_for_new_type(
                state, changes, priced_here=priced_here, category=category, sorted_here=sort
            )
    else:
        added = [w for w in [*named, *features] if w not in state.terms]
        attributes = [a for a in state.attributes if a not in excluded]
        state = replace(
            state,
            attributes=tuple(dict.fromkeys([*attributes, *added])),
            exclusions=tuple(dict.fromkeys([*state.exclusions, *excluded])),
        )
        if added:
            changes.append(f"with {', '.join(added)}")
    if excluded:
        state = replace(state, terms=tuple(t for t in state.terms if t not in excluded))
        changes.append(f"without {', '.join(excluded)}")
    return Update(state, changes, new_product)


def _forget_for_new_type(
    state: Constraints,
    changes: list[str],
    *,
    priced_here: bool,
    category: str | None,
    sorted_here: str | None,
) -> Constraints:
    """Drop the price limit, category and price order set for the previous product type,
    unless this message set them (``priced_here``; ``category``: the one it named;
    ``sorted_here``: the order it asked for)."""
    if not priced_here and (state.min_price is not None or state.max_price is not None):
        dropped = describe_price(state.min_price, state.max_price)
        changes.append(f"new product: price limit {dropped} dropped")
        state = replace(state, min_price=None, max_price=None)
    if state.category is not None and category != state.category:
        changes.append(f"new product: category {state.category} dropped")
        state = replace(state, category=None)
    if sorted_here is None and state.sort != RELEVANCE:
        changes.append(f"new product: order {state.sort} dropped")
        state = replace(state, sort=RELEVANCE)
    return state


def sort_in(text: str) -> tuple[str | None, str]:
    """The order a message asks for (``None``: it says none) and the message without the
    words that asked: "highest first" is read before "lowest" so "sort by price, high to low"
    is not read as "sort by price"."""
    for pattern, sort in (
        (_BY_RELEVANCE, RELEVANCE),
        (_HIGHEST_FIRST, PRICE_DESC),
        (_LOWEST_FIRST, PRICE_ASC),
    ):
        if pattern.search(text):
            return sort, pattern.sub(" ", text)
    return None, text


def _known_sort(value: Any) -> str:
    """A checkpoint's order, or relevance for one this version does not know."""
    return value if value in SORTS else RELEVANCE


def describe_price(low: Decimal | None, high: Decimal | None) -> str:
    if low is not None and high is not None:
        return f"${_money(low)} to ${_money(high)}"
    if high is not None:
        return f"under ${_money(high)}"
    if low is not None:
        return f"over ${_money(low)}"
    return ""


def _money(value: Decimal) -> str:
    text = f"{value:,.2f}"
    return text[:-3] if text.endswith(".00") else text


def same_word(written: str, product: str) -> bool:
    """Does a query word name the product type: the same first letters ("headphone" for
    "headphones"), or the shopper's typo respelled ("speaker" for "speeker")?"""
    if written.startswith(product[:4]) or product.startswith(written[:4]):
        return True
    edits = max_edits(product)
    return edits > 0 and edit_distance(written, product, edits) <= edits


def shown_prices(products: Iterable[Product | ShownProduct]) -> list[Decimal]:
    """The prices of a shown list ("cheaper" is relative to them)."""
    return [p for p in (price_or_none(item.price) for item in products) if p is not None]


def _median(prices: Sequence[Decimal]) -> Decimal:
    """The middle price of a shown list: "cheaper" means cheaper than most of what was shown
    (below the cheapest would often leave nothing; below the dearest changes little)."""
    ordered = sorted(prices)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return ((ordered[middle - 1] + ordered[middle]) / 2).quantize(_CENT)


def _measure(match: re.Match[str]) -> str:
    number, unit = match.group(1).replace(",", "."), match.group(2).lower()
    if unit in ('"', "”", "''", "in", "inches"):
        unit = "inch"
    return f"{number} {unit}" if unit in ("inch", "port", "ports", "watts") else f"{number}{unit}"


def _is_number(word: str) -> bool:
    return bool(re.fullmatch(r"[\d.,]+", word))
