"""Replies written from the results and the catalog, never from what a model imagines.

With the embedded 135M model the graph writes every reply the shopper reads (the model writes
the search); with a capable endpoint it writes the ones whose model prose failed the checks.
Each reply is short and checkable against the table printed under it:

- results: how many matched (for what, and in which order: "sorted by price, lowest first",
  ``Constraints.describe``), the price range and brands of what is shown, which constraints
  were dropped to find anything, and one suggestion to refine;
- nothing found: what was searched, what was dropped, and the catalog's facets (top brands
  and price range for the words searched) to help choose again;
- details of one product, or a side-by-side table of several, from the catalog's attributes;
- a question back when the message names nothing to search for.

All catalog text passes ``strip_control_tokens`` and is cut short: it is the seller's text,
shown as data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from agent.conversation.constraints import Constraints, shown_prices
from agent.conversation.products import ShownProduct
from agent.protocol.control_tokens import strip_control_tokens
from tools.catalog.product import Product, format_attribute
from tools.search.request import RELEVANCE

#: Attributes a comparison table shows at most (the ones most of the products have first).
COMPARE_ROWS = 10
DETAIL_ATTRIBUTES = 8
DESCRIPTION_CHARS = 240
#: A searched query longer than this is cut in the reply (the tool-call line shows it whole).
SEARCHED_CHARS = 80
#: Attribute keys that identify rather than describe (long code lists help no one choose).
_IDENTIFIERS = frozenset({"ean", "upc", "gtin", "sku", "mpn", "asin", "isbn"})


def compose_results(
    constraints: Constraints,
    products: Sequence[ShownProduct],
    *,
    total: int,
    relaxed: Sequence[str] = (),
    searched: str = "",
) -> str:
    """The reply over a non-empty list of shown products.

    ``searched``: the query the writer searched when it is not the shopper's words (the
    request respelled in the catalog's spelling, ``tools.search.respelling``, or a capable
    model's own words), so the reply says what the list was found for.
    """
    prices = shown_prices(products)
    # a price order over products without prices would be a claim the list cannot back
    sought = constraints.describe(order=bool(prices)) or "your request"
    searched = " ".join(strip_control_tokens(searched).split())[:SEARCHED_CHARS]
    # What the list was searched as goes into the one parenthesis of facts after the lead.
    facts: list[str] = []
    if searched and searched.lower() != constraints.query().lower():
        facts.append(f'searched as "{searched}"')
    matches = shown_matches(constraints, products)
    lead = f"Here {matches} for {sought}"
    if relaxed:
        lead = (
            f"Nothing matched with {_join(relaxed)}, so I left "
            f"{'it' if len(relaxed) == 1 else 'them'} out: here {matches} for {sought}"
        )
    if constraints.sort != RELEVANCE and not prices:
        facts.append("no prices listed, so in order of relevance")
    if prices:
        low, high = min(prices), max(prices)
        facts.append(f"${_money(low)}" if low == high else f"${_money(low)} to ${_money(high)}")
    brands = Counter(p.brand for p in products if p.brand)
    if brands:
        facts.append("from " + _join([name for name, _ in brands.most_common(3)]))
    body = "; ".join(f for f in facts if f)
    text = f"{lead}" + (f" ({body})." if body else ".")
    return f"{text} {suggestion(constraints, products, total)}"


def shown_matches(constraints: Constraints, products: Sequence[ShownProduct]) -> str:
    """ "are the 4 best matches", or "closest" when a shown product does not name the type
    sought (``Constraints.names_product``).

    Why the number shown and not the search's total: a lexical search counts every product
    holding any one word of the query ("Found 7,795 matches" for "wireless mouse" counted
    every "wireless" and every "mouse"), a number the shopper cannot check and that means
    nothing. The list is what was found worth showing; its length is a count anyone can verify.
    """
    quality = "best" if all(constraints.names_product(p) for p in products) else "closest"
    if len(products) == 1:
        return f"is the {quality} match"
    return f"are the {len(products)} {quality} matches"


def suggestion(constraints: Constraints, products: Sequence[ShownProduct], total: int) -> str:
    """One way to narrow (or widen) the list, chosen from what the shopper has not said and
    what the shown products carry: a catalog without prices (Home Depot's titles) is never
    asked for a budget, which could only be dropped again."""
    brands = Counter(p.brand for p in products if p.brand)
    priced = bool(shown_prices(products))
    unbounded = constraints.max_price is None and constraints.min_price is None
    if priced and unbounded and total > 3:
        return 'Tell me a budget ("under 50") to narrow it down.'
    if not constraints.brands and len(brands) > 1:
        top = brands.most_common(1)[0][0]
        return f'Say "only {top}" for one brand, or "compare 1 and 2".'
    if not constraints.attributes and total > 5:
        cheaper = ', or say "cheaper"' if priced else ""
        return f"Add a feature (a size, a material, a colour) to narrow it down{cheaper}."
    if len(products) < 2:  # nothing to compare with, no second one to point at
        return 'Say "the first one" for details, or "more like 1".'
    return 'Say "the second one" for details, "compare 1 and 2", or "more like 1".'


def compose_nothing(
    constraints: Constraints,
    *,
    relaxed: Sequence[str],
    facets: Sequence[Product] = (),
    catalog_brands: Sequence[tuple[str, int]] = (),
) -> str:
    """No product survived, even with ``relaxed`` dropped: say so, then what the catalog has
    for these words (``facets``: products found before the constraints filtered them), or,
    when the words found nothing at all, the catalog's largest brands."""
    sought = constraints.describe(order=False) or "that"  # nothing found: no order to name
    text = f"Nothing matched {sought}"
    if relaxed:
        text += f", even without {_join(relaxed)}"
    text += "."
    if facets:
        brands = Counter(p.brand for p in facets if p.brand)
        prices = shown_prices(facets)
        words = " ".join(constraints.terms) or "these words"
        parts = []
        if brands:
            parts.append("brands " + ", ".join(f"{b} ({n})" for b, n in brands.most_common(4)))
        if prices:
            parts.append(f"prices ${_money(min(prices))} to ${_money(max(prices))}")
        if parts:
            text += f" For {words} the catalog has {'; '.join(parts)}."
    elif catalog_brands:
        top = ", ".join(f"{name} ({count:,})" for name, count in catalog_brands[:5])
        text += f" The catalog's largest brands are {top}."
    return text + " Try other words, another brand or a different budget."


def compose_clarify(constraints: Constraints) -> str:
    """The question when a message names nothing to search for."""
    if constraints.has_filters():
        return (
            f"What kind of product should I look for ({constraints.describe()})? "
            'Name the product, like "headphones" or "a 27 inch monitor".'
        )
    return (
        'What are you looking for? Name a product ("wireless mouse"), and add a budget or '
        "a brand if you have one."
    )


def compose_in_english(language: str) -> str:
    """The answer to a message in another language (``agent.conversation.languages``): one
    plain sentence, never products found by foreign keywords."""
    written = "in another language" if language == "another language" else f"in {language}"
    return (
        f"Your message looks written {written}; this catalog is searched in English. "
        'Please name the product in English, for example "wireless mouse" or "cordless drill".'
    )


def compose_details(position: int, product: Product, question_words: Sequence[str] = ()) -> str:
    """One product from the catalog: title, brand, price, key attributes, a description cut
    short; when the shopper asked about a word ("is it wireless?"), what the catalog says."""
    lines = [f"#{position} {_clean(product.title)}"]
    facts = [product.brand] if product.brand else []
    facts.append("no price listed" if product.price is None else f"${_money(product.price)}")
    lines.append(" · ".join(_clean(f) for f in facts))
    attributes = _describing(product.attributes)
    for key, value in list(attributes.items())[:DETAIL_ATTRIBUTES]:
        lines.append(f"  {_label(key)}: {_clean(format_attribute(value), 80)}")
    if product.description:
        lines.append(_clean(product.description, DESCRIPTION_CHARS))
    answers = _answers(product, question_words)
    if answers:
        lines.append(answers)
    return "\n".join(lines)


def compose_comparison(items: Sequence[tuple[int, Product]]) -> str:
    """A side-by-side table of attributes (rows) for the products (columns), as text."""
    columns = [f"#{position}" for position, _ in items]
    rows: list[tuple[str, list[str]]] = [
        ("title", [_clean(p.title, 40) for _, p in items]),
        ("brand", [_clean(p.brand) or "—" for _, p in items]),
        ("price", ["—" if p.price is None else f"${_money(p.price)}" for _, p in items]),
    ]
    keys: Counter[str] = Counter()
    for _, product in items:
        keys.update(_describing(product.attributes).keys())
    for key, _ in keys.most_common(COMPARE_ROWS):
        values = [
            _clean(format_attribute(p.attributes[key]), 30) if key in p.attributes else "—"
            for _, p in items
        ]
        rows.append((_label(key), values))
    width = max(len(label) for label, _ in rows)
    widths = [
        max(len(columns[i]), *(len(values[i]) for _, values in rows)) for i in range(len(items))
    ]
    lines = [
        " " * width + "  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    ]
    for label, values in rows:
        cells = "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True))
        lines.append(f"{label.ljust(width)}  {cells}".rstrip())
    cheapest = min(
        (p for _, p in items if p.price is not None), key=lambda p: p.price or 0, default=None
    )
    summary = f"Comparing {_join(columns)}."
    if cheapest is not None:
        position = next(pos for pos, p in items if p is cheapest)
        summary += f" #{position} is the cheapest."
    return summary + "\n" + "\n".join(lines)


def compose_missing(positions: Sequence[int], shown_count: int) -> str:
    listed = ", ".join(f"#{p}" for p in positions)
    if shown_count == 0:
        return f"There is no list to pick {listed} from yet: tell me what you are looking for."
    return f"The last list has products #1 to #{shown_count}; there is no {listed}."


def compose_which(items: Sequence[tuple[int, Product]], words: Sequence[str]) -> str:
    """ "Which of these is waterproof?": for each word asked, the shown products whose catalog
    record mentions it (with what it says), and a plain "none" otherwise; without a word to
    look for, the products' side-by-side table."""
    if not words:
        return compose_comparison(items)
    lines: list[str] = []
    for word in words:
        found = [(position, _evidence(product, word)) for position, product in items]
        said = [f"#{position} ({evidence})" for position, evidence in found if evidence]
        if said:
            lines.append(f"{word}: {_join(said)}.")
        else:
            lines.append(f"None of the {len(items)} shown mentions {word} in the catalog.")
    return " ".join(lines)


def _evidence(product: Product, word: str) -> str:
    """What a product's record says about ``word``: an attribute, or its title/description."""
    for key, value in product.attributes.items():
        text = str(format_attribute(value))
        if key.lower() not in _IDENTIFIERS and (word in key.lower() or word in text.lower()):
            return f"{_label(key)}: {_clean(text, 40)}"
    if word in product.title.lower() or word in product.description.lower():
        return "in its title or description"
    return ""


def _answers(product: Product, words: Sequence[str]) -> str:
    if not words:
        return ""
    said: list[str] = []
    unknown: list[str] = []
    for word in words:
        hits = [
            f"{_label(k)}: {_clean(format_attribute(v), 60)}"
            for k, v in product.attributes.items()
            if k.lower() not in _IDENTIFIERS
            and (word in k.lower() or word in str(format_attribute(v)).lower())
        ]
        in_text = word in product.title.lower() or word in product.description.lower()
        if hits:
            said.append(f"{word}: {'; '.join(hits[:2])}")
        elif in_text:
            said.append(f"{word}: mentioned in its title or description")
        else:
            unknown.append(word)
    parts = []
    if said:
        parts.append("The catalog says " + " · ".join(said) + ".")
    if unknown:
        parts.append(f"The catalog says nothing about {_join(unknown)} for it.")
    return " ".join(parts)


def _describing(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v for k, v in attributes.items() if k.lower() not in _IDENTIFIERS and len(str(v)) <= 200
    }


def _label(key: str) -> str:
    return " ".join(key.replace("_", " ").split())


def _clean(text: str, limit: int = 120) -> str:
    text = " ".join(strip_control_tokens(str(text)).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _money(value: Decimal) -> str:
    text = f"{value:,.2f}"
    return text[:-3] if text.endswith(".00") else text


def _join(items: Sequence[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
