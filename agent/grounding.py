"""Citation check: the shopper only ever sees products the tools returned in this conversation.

The model's text is checked, not trusted:

- a citation (``[id]``, ``[#2]``, "product x9", or a bare catalog id) of anything the tools did
  not return is a *violation*: the sentence carrying it is removed and the violation logged;
- a dollar amount stated for a cited product that differs from the catalog's price is a
  violation too (comparisons such as "under $50" are the shopper's words, not claims);
- the product list is built from tool results, never from the text: the products the text
  cites, in ranking order, or this turn's top results when it cites none; titles, brands and
  prices are re-read from the catalog at answer time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from tools.catalog.product import Product
from tools.search.backend import SearchError

Lookup = Callable[[str], Product | None]

_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)|\n+")
_BRACKET = re.compile(r"\[\s*(#?)([\w.-]{1,64})\s*\]")
_HASH_POSITION = re.compile(r"(?<![\w\[])#(\d{1,3})\b")
_ID_PHRASE = re.compile(r"\b(?:product|item|sku|id)\s*(?:id\s*)?[:#]?\s*([A-Za-z0-9][\w-]{0,63})", re.I)
_TOKEN = re.compile(r"[A-Za-z0-9][\w-]*")
_PRICE = re.compile(r"\$\s?(\d[\d,]*(?:\.\d{1,2})?)")
_COMPARATIVE = re.compile(
    r"(?:under|below|less than|up to|at most|max(?:imum)?|within|over|above|more than|"
    r"at least|from|budget(?: of)?|around|about)\s*$",
    re.I,
)
#: Bare tokens looked up in the catalog: mixed letters and digits, or long digit runs.
_ID_LIKE = re.compile(r"^(?=.*\d)(?=.*[A-Za-z])[\w-]{2,40}$|^\d{6,20}$")


@dataclass(slots=True)
class GroundedAnswer:
    text: str
    #: ``ShownProduct``-shaped dicts (position, id, title, brand, price, category).
    products: list[dict[str, Any]]
    violations: list[str]
    cited_ids: list[str]
    #: Facts that are not the model's fault (a product withdrawn since it was returned).
    notes: list[str] = field(default_factory=list)


def ground_answer(
    text: str,
    *,
    turn_ids: Sequence[str],
    retrieved: Mapping[str, dict[str, Any]],
    lookup: Lookup | None,
    limit: int,
    default_lead: str = "Here is what I found:",
) -> GroundedAnswer:
    """Check ``text`` against what the tools returned and build the product list.

    ``turn_ids``: this turn's returned ids in ranking order; ``retrieved``: every product the
    tools returned in the conversation (id -> ``Product.to_dict()``), in order of retrieval.
    """
    order = list(dict.fromkeys([*turn_ids, *retrieved]))
    known = {pid.lower(): pid for pid in order}
    kept_sentences: list[str] = []
    cited: list[str] = []
    violations: list[str] = []
    for sentence in _sentences(text):
        found, problems = _check_sentence(sentence, known, list(turn_ids), retrieved, lookup)
        if problems:
            violations.extend(problems)
            continue
        kept_sentences.append(sentence)
        cited.extend(pid for pid in found if pid not in cited)
    cleaned = "".join(kept_sentences).strip()
    if violations and not cleaned:
        cleaned = default_lead
    chosen = [pid for pid in order if pid in cited] if cited else list(turn_ids)[:limit]
    products, notes = _from_catalog(chosen, retrieved, lookup)
    return GroundedAnswer(cleaned, products, violations, cited, notes)


def _sentences(text: str) -> list[str]:
    return [m.group(0) for m in _SENTENCE.finditer(text)]


def _check_sentence(
    sentence: str,
    known: Mapping[str, str],
    turn_ids: list[str],
    retrieved: Mapping[str, dict[str, Any]],
    lookup: Lookup | None,
) -> tuple[list[str], list[str]]:
    """The returned products a sentence cites, and its violations."""
    cited: list[str] = []
    problems: list[str] = []

    def cite(product_id: str) -> None:
        if product_id not in cited:
            cited.append(product_id)

    for hashed, token in _BRACKET.findall(sentence):
        if token.lower() in known and not hashed:
            cite(known[token.lower()])
        elif token.isdigit() and 1 <= int(token) <= len(turn_ids):
            cite(turn_ids[int(token) - 1])
        else:
            problems.append(f"cited {token!r}, which no tool returned")
    for position in _HASH_POSITION.findall(sentence):
        if 1 <= int(position) <= len(turn_ids):
            cite(turn_ids[int(position) - 1])
    for token in _ID_PHRASE.findall(sentence):
        if token.lower() in known:
            cite(known[token.lower()])
        elif any(ch.isdigit() for ch in token) and not token.isdigit():
            problems.append(f"cited {token!r}, which no tool returned")
    for token in _TOKEN.findall(sentence):
        lowered = token.lower()
        if lowered in known and (len(token) >= 2):
            cite(known[lowered])
        elif _ID_LIKE.match(token) and _in_catalog(token, lookup):
            problems.append(f"cited catalog product {token!r}, which no tool returned")
    lowered_sentence = " ".join(sentence.lower().split())
    for product_id, product in retrieved.items():
        title = " ".join(str(product.get("title", "")).lower().split())
        if title and title in lowered_sentence:
            cite(product_id)
    if len(cited) == 1:
        problems.extend(_price_problems(sentence, retrieved.get(cited[0]), cited[0]))
    return cited, sorted(set(problems), key=problems.index)


def _price_problems(sentence: str, product: dict[str, Any] | None, product_id: str) -> list[str]:
    if product is None or product.get("price") in (None, ""):
        return []
    catalog = Decimal(str(product["price"]))
    problems = []
    for match in _PRICE.finditer(sentence):
        if _COMPARATIVE.search(sentence[: match.start()]):
            continue
        try:
            stated = Decimal(match.group(1).replace(",", ""))
        except InvalidOperation:
            continue
        if stated != catalog:
            problems.append(f"stated ${stated} for {product_id}; the catalog says ${catalog}")
    return problems


def _in_catalog(token: str, lookup: Lookup | None) -> bool:
    if lookup is None:
        return False
    try:
        return lookup(token) is not None
    except SearchError:
        return False


def _from_catalog(
    product_ids: Sequence[str], retrieved: Mapping[str, dict[str, Any]], lookup: Lookup | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Shown products as the catalog has them now; the tool's copy if the catalog is down."""
    shown: list[dict[str, Any]] = []
    notes: list[str] = []
    for product_id in product_ids:
        product: Product | None
        try:
            product = lookup(product_id) if lookup is not None else None
            if lookup is not None and product is None:
                notes.append(f"{product_id} is no longer in the catalog")
                continue
        except SearchError as error:
            notes.append(f"catalog re-read failed for {product_id}: {error}")
            product = None
        if product is None:
            product = Product.from_dict(retrieved[product_id])
        shown.append(shown_dict(len(shown) + 1, product))
    return shown, notes


def shown_dict(position: int, product: Product) -> dict[str, Any]:
    return {
        "position": position,
        "id": product.id,
        "title": product.title,
        "brand": product.brand,
        "price": None if product.price is None else str(product.price),
        "category": product.category,
    }
