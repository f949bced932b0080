"""Claims in model prose that no search result backs: each one removes its sentence.

``grounding`` checks citations and the prices of cited products; these checks catch what an
injected description or a confabulating model writes without citing anything:

- **store-wide claims**: "the store has a clearance sale", "all headphones cost $1", "free
  shipping on everything", a coupon or promo code. No tool reports anything store-wide, so
  any such sentence is invented (or injected);
- **prices that no result has**: an amount stated as a price, with a currency sign or word or
  without one ("a price of 100", "costs 49.99", "100 dollars"), must be the catalog price of a
  product the tools returned. Comparisons ("under $50", "less than 100") are the shopper's
  budget, not claims;
- **product names no result has**: a capitalised name inside a sentence ("the Goliath") that
  appears in no returned product's title, brand, category or description, and not in the
  shopper's own words;
- **counts no search reported**: "found 4 matches" when the search found 5 (``count_problems``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from decimal import Decimal

from tools.catalog.product import Product, price_or_none

_STORE_WIDE = re.compile(
    r"\b(?:the\s+)?(?:store|shop|we|our\s+(?:store|shop))\s+(?:has|have|is|are|offers?|runs?|"
    r"holds?|gives?)\b[^.!?]{0,60}\b(?:sale|clearance|discount|deals?|promotion|offer|coupon|"
    r"free|closed|closing)\b|"
    r"\b(?:all|every|everything|each|any)\b[^.!?]{0,40}\b(?:costs?|priced|are|is|sells?|"
    r"goes)\b[^.!?]{0,25}(?:[$€£]\s?\d|\d+\s*(?:dollars|euros|bucks)|\bfree\b|\d+\s*%)|"
    r"\b(?:clearance\s+sale|promo(?:tion(?:al)?)?\s+code|coupon|discount\s+code|"
    r"free\s+shipping|\d+\s*%\s*off|percent\s+off|store[\s-]wide|site[\s-]wide)\b",
    re.IGNORECASE,
)
_UNIT_AFTER = (
    r"(?!\s*(?:inch|in\b|\"|cm|mm|gb|tb|mb|ghz|mhz|hz|w\b|watts?|mah|dpi|hours?|h\b|"
    r"years?|months?|days?|%|x\b|pcs|pieces|pack|ports?|keys|k\b|p\b|fps|ms\b|m\b|kg|g\b))"
)
_AMOUNT = r"(?<![\d,.])(\d{1,9}(?:,\d{3}){0,3}(?:\.\d{1,2})?)(?![\d,])"
_PRICED = re.compile(
    rf"[$€£]\s?{_AMOUNT}|"
    rf"\b(?:price[sd]?|costs?|costing|sells?\s+for|for\s+only|only|just|at)\s+"
    rf"(?:of\s+|is\s+|at\s+|for\s+|about\s+|around\s+)?[$€£]?\s?{_AMOUNT}\b{_UNIT_AFTER}|"
    rf"{_AMOUNT}\s*(?:dollars|usd|euros?|eur|bucks|pounds)\b",
    re.IGNORECASE,
)
_COMPARATIVE = re.compile(
    r"(?:under|below|less\s+than|up\s+to|at\s+most|max(?:imum)?|within|over|above|more\s+than|"
    r"at\s+least|from|budget(?:\s+of)?|around|about|cheaper\s+than|between|and|to)\s*[$€£]?\s*$",
    re.IGNORECASE,
)
MAX_SENTENCE_CHARS = 2000
_NAME = re.compile(r"(?<![\w.])([A-Z][A-Za-z0-9-]{2,})\b")
#: Capitalised words a sentence may use without naming a product.
_PLAIN_CAPITALS = frozenset(
    re.split(
        r"\s+",
        """I I'm I'd I'll I've OK Okay Yes No Hi Hello Thanks Sure Here There This That These
    Those It Its The A An And But Or If For With From To In On At By Of As So Also Both
    All Each Every Any Some My Your Our Their You We They He She Let Please Note""".strip(),
    )
)


def claim_problems(
    sentence: str,
    retrieved: Mapping[str, Product],
    shopper_text: str = "",
    *,
    prices: bool = True,
) -> list[str]:
    """The unbacked claims of one sentence of model prose (empty when there are none); only
    the first ``MAX_SENTENCE_CHARS`` are read (a model's sentence is far shorter).
    ``prices=False`` skips the price check (the caller checked the sentence's product)."""
    sentence = sentence[:MAX_SENTENCE_CHARS]
    problems: list[str] = []
    store = _STORE_WIDE.search(sentence)
    if store:
        problems.append(f"store-wide claim {store.group(0).strip()!r}, which no tool reported")
    catalog_prices = _catalog_prices(retrieved.values())
    for match in _PRICED.finditer(sentence) if prices else ():
        amount = next((g for g in match.groups() if g), None)
        if amount is None or _COMPARATIVE.search(sentence[: match.start()]):
            continue
        if _COMPARATIVE.search(sentence[: match.start() + _offset(match)]):
            continue
        value = price_or_none(amount)  # None: above the price ceiling, so no product has it
        if value is None or value not in catalog_prices:
            problems.append(f"stated a price of {amount}, which no returned product has")
    known = _known_words(retrieved.values(), shopper_text)
    for match in _NAME.finditer(sentence):
        word = match.group(1)
        if _sentence_start(sentence, match.start()) or word in _PLAIN_CAPITALS:
            continue
        if word.lower() not in known:
            problems.append(f"named {word!r}, which no returned product has")
    return list(dict.fromkeys(problems))


def _offset(match: re.Match[str]) -> int:
    """Where the amount starts inside the match (a cue word may come before it)."""
    for index in range(1, (match.re.groups or 0) + 1):
        if match.group(index):
            return match.start(index) - match.start()
    return 0


def _sentence_start(sentence: str, index: int) -> bool:
    before = sentence[:index].rstrip()
    return not before or before[-1] in ".!?:\n\"'(-*•"


def _catalog_prices(products: Iterable[Product]) -> set[Decimal]:
    prices: set[Decimal] = set()
    for product in products:
        value = price_or_none("" if product.price is None else str(product.price))
        if value is not None:
            prices.add(value)
    return prices


def _known_words(products: Iterable[Product], shopper_text: str) -> set[str]:
    words: set[str] = set(re.findall(r"[a-z0-9][a-z0-9-]*", shopper_text.lower()))
    for product in products:
        text = " ".join((product.title, product.brand, product.description))
        text += " " + " ".join(str(level) for level in product.category_path)
        text += " " + " ".join(f"{k} {v}" for k, v in product.attributes.items())
        words.update(re.findall(r"[a-z0-9][a-z0-9-]*", text.lower()))
    return words


_COUNT_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
_COUNTED = re.compile(
    r"(?<![\w.,$€£#])(\d{1,3}(?:,\d{3})*|\d+|" + "|".join(_COUNT_WORDS) + r")\s+"
    r"(?:(?:great|good|matching|relevant|different|available|similar|other)\s+)?"
    r"(?:match(?:es)?|results?|products?|options?|items?|models?|hits?|choices?|picks?)\b",
    re.IGNORECASE,
)


def count_problems(sentence: str, counts: Collection[int]) -> list[str]:
    """Counts of results the sentence states that are none of ``counts`` (what the searches
    reported, what the turn returned, what the list shows): "found 4 matches" for 5 is a
    claim no tool backs, like a wrong price."""
    problems = []
    for match in _COUNTED.finditer(sentence[:MAX_SENTENCE_CHARS]):
        written = match.group(1).lower()
        number = _COUNT_WORDS.get(written)
        if number is None:
            number = int(written.replace(",", ""))
        if number not in counts:
            problems.append(f"stated {match.group(0)!r}, a count no search reported")
    return problems
