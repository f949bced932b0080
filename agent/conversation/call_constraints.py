"""A model's search call against the shopper's constraints: the state wins.

A small model invents filters, so its tool arguments may add a brand, a category or a price
limit only when the shopper named it (``absorb_call``), and every search runs with the
state's filters whatever the call said (``apply_to_call``): every wanted brand (``brand``, a
list when there are several), every excluded one (``exclude_brands``) and the price order
(``sort``), which the state reads from the shopper's words alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from agent.conversation.constraints import Constraints, same_word
from agent.conversation.message_words import plain_words
from agent.conversation.prices import words_to_digits
from tools.catalog.product import price_or_none
from tools.search.facets import Facets
from tools.search.request import RELEVANCE
from tools.search.unit_spelling import spell_measures


def absorb_call(
    state: Constraints, arguments: Mapping[str, Any], shopper_text: str, facets: Facets | None
) -> tuple[Constraints, list[str]]:
    """Filters from the model's call that the shopper's words back up (a brand, a category or
    a price limit they named and the state does not have yet); notes name the ones ignored."""
    facets = facets or Facets()
    said = " ".join(plain_words(words_to_digits(shopper_text)))
    notes: list[str] = []
    for brand in _brand_names(arguments.get("brand")) if not state.brands else []:
        known = facets.brand(brand)
        if known and _mentions(said, known.name) and known.name not in state.excluded_brands:
            state = replace(state, brands=tuple(dict.fromkeys([*state.brands, known.name])))
        else:
            notes.append(f"brand {brand!r} from the model ignored: the shopper did not ask")
    category = str(arguments.get("category") or "").strip()
    if category and not state.category:
        known = facets.category(category)
        if known and _mentions(said, known.name):
            state = replace(state, category=known.name)
        else:
            notes.append(f"category {category!r} from the model ignored: the shopper did not ask")
    stated = state.min_price is not None or state.max_price is not None
    for key in ("min_price", "max_price"):
        value = price_or_none(arguments.get(key))
        if value is None:
            continue
        if stated:  # the shopper's own limits were read from their words: they stand
            notes.append(f"{key} {value} from the model ignored: the shopper's limits stand")
            continue
        amount = format(value.normalize(), "f")
        if re.search(rf"(?<![\d.]){re.escape(amount)}(?![\d])", said):
            candidate = replace(state, **{key: value})
            low, high = candidate.min_price, candidate.max_price
            if low is None or high is None or low <= high:
                state = candidate
                continue
        notes.append(f"{key} {amount} from the model ignored: the shopper did not say it")
    return state, notes


def apply_to_call(arguments: Mapping[str, Any], state: Constraints) -> dict[str, Any]:
    """A search call's arguments with the state's filters (the state wins), the product type
    and features added to the query when missing ("photo editing 27 inch" for a monitor
    becomes "monitor photo editing 27 inch"), and excluded words taken out of it."""
    args = {k: v for k, v in arguments.items() if k not in _STATE_ARGUMENTS}
    if state.brands:
        args["brand"] = state.brands[0] if len(state.brands) == 1 else list(state.brands)
    if state.category:
        args["category"] = state.category
    if state.min_price is not None:
        args["min_price"] = float(state.min_price)
    if state.max_price is not None:
        args["max_price"] = float(state.max_price)
    if "query" in args:  # search_products: the arguments only it takes
        if state.excluded_brands:
            args["exclude_brands"] = list(state.excluded_brands)
        if state.sort != RELEVANCE:
            args["sort"] = state.sort
        words = str(args.get("query") or "").split()
        lowered = {w.lower() for w in words}
        banned = set(state.exclusions)
        words = [w for w in words if w.lower() not in banned]
        if state.product and not any(same_word(w, state.product) for w in lowered):
            words.insert(0, state.product)  # a query that lost the product type gets it back
        for feature in state.attributes:
            # written either way counts: the writer sees the request in the catalog's
            # spelling ("1/2 inch" as "1/2 in.", tools.search.respelling)
            forms = (feature, spell_measures(feature))
            if not any(all(w.lower() in lowered for w in form.split()) for form in forms):
                words += [w for w in feature.split() if w.lower() not in lowered]
        args["query"] = " ".join(words) or state.query()
    if "concepts" in args and state.attributes:
        concepts = args["concepts"] if isinstance(args["concepts"], list) else [args["concepts"]]
        args["concepts"] = [*concepts, *[a for a in state.attributes if a not in concepts]]
    return args


#: The arguments the state decides, whatever the model wrote.
_STATE_ARGUMENTS = frozenset(
    {"brand", "category", "min_price", "max_price", "exclude_brands", "sort"}
)


def _brand_names(value: Any) -> list[str]:
    """The model's ``brand``: one name or a list of them."""
    values = value if isinstance(value, list | tuple) else [value]
    return [str(v).strip() for v in values if isinstance(v, str) and v.strip()]


def _mentions(said: str, name: str) -> bool:
    return " ".join(plain_words(name)) in said
