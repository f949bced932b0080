"""Citation check: the shopper only ever sees products the tools returned in this conversation.

The model's text is checked, not trusted:

- only its prose counts: from the first markup on (a tag, a code fence, a JSON object, as when
  a small model parrots the tool data back) the text is cut;
- a citation (``[id]``, ``[#2]``, "product x9", or a bare catalog id) of anything the tools did
  not return is a *violation*: the sentence carrying it is removed and the violation logged;
- a dollar amount stated for a product (cited in that sentence, or the one product the
  previous sentences were about) that differs from its catalog price is a violation too
  (comparisons such as "under $50" are the shopper's words, not claims);
- the product list is built from tool results, never from the text: the products the text
  cites, in ranking order, or this turn's top results when it cites none; titles, brands and
  prices are re-read from the catalog at answer time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from agent.conversation.claims import claim_problems, count_problems
from agent.conversation.products import ShownProduct
from tools.catalog.product import Product
from tools.search.backend import SearchError

Lookup = Callable[[str], Product | None]

#: Sentence ends: after . ! ? followed by whitespace (so "$19.99" stays whole), or a newline.
#: Where prose ends and markup begins: a tag (``<tool_data>``, ``</tool_call>``, ``<|im_end|>``),
#: a code fence, or a JSON object. A small model often parrots tool data back as its answer.
_MARKUP = re.compile(r"<\|?/?[A-Za-z_][\w|-]*>?|```|\{\s*\"")
#: A streamed tail that is not markup yet but the next characters may make it so.
_MARKUP_PREFIX = re.compile(r"(?:<\|?/?|\{\s*|`{1,2})$")
_JSON_ID = re.compile(r'"id"\s*:\s*"([^"]{1,64})"')
_SENTENCE_END = re.compile(r"(?<=[.!?])(?=\s)|(?=\n)")
_BRACKET = re.compile(r"\[\s*(#?)([\w.-]{1,64})\s*\]")
_HASH_POSITION = re.compile(r"(?<![\w\[])#(\d{1,3})\b")
_ID_PHRASE = re.compile(
    r"\b(?:product|item|sku|id)\s*(?:id\s*)?[:#]?\s*([A-Za-z0-9][\w-]{0,63})", re.I
)
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
    products: list[ShownProduct]
    violations: list[str]
    cited_ids: list[str]
    #: Facts that are not the model's fault (a product withdrawn since it was returned).
    notes: list[str] = field(default_factory=list)


def prose_end(text: str, *, streaming: bool = False) -> int:
    """Where the prose of ``text`` ends: at the first markup (``_MARKUP``), else at its end.

    The one markup cut: grounding cuts the answer here and the chat stream (``graph``) shows
    text only up to here, so the shopper never watches prose appear that the grounded answer
    then drops, or the reverse. ``streaming`` also holds back a tail the next characters could
    turn into markup (a lone ``<``, ``{`` or backtick); ``< $50`` is prose once it is whole.
    """
    found = _MARKUP.search(text)
    if found is not None:
        return found.start()
    if streaming and (tail := _MARKUP_PREFIX.search(text)) is not None:
        return tail.start()
    return len(text)


def ground_answer(
    text: str,
    *,
    turn_ids: Sequence[str],
    retrieved: Mapping[str, Product],
    lookup: Lookup | None,
    limit: int,
    shopper_text: str = "",
    reported_totals: Collection[int] = (),
) -> GroundedAnswer:
    """Check ``text`` against what the tools returned and build the product list.

    Besides citations and cited prices, every sentence goes through
    ``agent.conversation.claims.claim_problems`` (store-wide claims, prices no result has,
    names no result has; ``shopper_text`` holds words the shopper used, which are fine).

    The returned text may be empty (nothing survived the checks): the caller then writes a
    neutral lead for the product list.

    ``turn_ids``: this turn's returned ids in ranking order; ``retrieved``: every product the
    tools returned in the conversation (id -> ``Product``), in order of retrieval;
    ``reported_totals``: the match counts the searches reported. A count the prose states
    ("found 4 matches", "here are 3 options") must be one of those, the number of products this
    turn returned, or the number the list shows.
    """
    order = list(dict.fromkeys([*turn_ids, *retrieved]))
    known = {pid.lower(): pid for pid in order}
    catalog = _Catalog(retrieved, lookup)
    violations: list[str] = []
    markup = _MARKUP.search(text)
    if markup is not None:
        catalog.notes.append("dropped markup the model wrote instead of prose")
        violations.extend(
            f"invented tool data for {pid!r}, which no tool returned"
            for pid in dict.fromkeys(_JSON_ID.findall(text[markup.start() :]))
            if pid.lower() not in known
        )
        text = text[: markup.start()]
    kept_sentences: list[str] = []
    cited: list[str] = []
    subject: str | None = None  # the product a sentence without a citation talks about
    for sentence in _sentences(text):
        found, problems = _check_sentence(sentence, known, list(turn_ids), retrieved, catalog)
        if len(found) == 1:
            subject = found[0]
        elif found:
            subject = None
        priced = subject is not None and len(found) <= 1
        if priced:
            problems.extend(_price_problems(sentence, catalog.current(subject), subject))
        # prices of one product are checked just above; other prices against every result
        problems.extend(claim_problems(sentence, retrieved, shopper_text, prices=not priced))
        counts = {len(turn_ids), min(len(turn_ids), limit), *reported_totals}
        problems.extend(count_problems(sentence, counts))
        if problems:
            violations.extend(problems)
            continue
        if _normalised(sentence) in {_normalised(kept) for kept in kept_sentences}:
            continue  # small models loop; a repeated sentence says nothing new
        kept_sentences.append(sentence)
        cited.extend(pid for pid in found if pid not in cited)
    cleaned = "".join(kept_sentences).strip()
    chosen = [pid for pid in order if pid in cited] if cited else list(turn_ids)[:limit]
    products = catalog.shown(chosen)
    return GroundedAnswer(cleaned, products, violations, cited, catalog.notes)


def _normalised(sentence: str) -> str:
    return " ".join(sentence.lower().split()).rstrip(".!?")


def _sentences(text: str) -> list[str]:
    return [piece for piece in _SENTENCE_END.split(text) if piece]


def _check_sentence(
    sentence: str,
    known: Mapping[str, str],
    turn_ids: list[str],
    retrieved: Mapping[str, Product],
    catalog: _Catalog,
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
        elif (
            any(ch.isdigit() for ch in token)
            and not token.isdigit()
            and not _in_titles(token, retrieved)  # "product WH-1000XM4": a model number
        ):
            problems.append(f"cited {token!r}, which no tool returned")
    for token in _TOKEN.findall(sentence):
        lowered = token.lower()
        if lowered in known and (len(token) >= 2):
            cite(known[lowered])
        elif _ID_LIKE.match(token) and catalog.has(token):
            problems.append(f"cited catalog product {token!r}, which no tool returned")
    lowered_sentence = " ".join(sentence.lower().split())
    for product_id, product in retrieved.items():
        title = " ".join(product.title.lower().split())
        if title and title in lowered_sentence:
            cite(product_id)
    return cited, list(dict.fromkeys(problems))


def _in_titles(token: str, retrieved: Mapping[str, Product]) -> bool:
    """Is ``token`` a word of a returned product's title (titles only: descriptions are free text
    that an injection could use to whitelist an invented id)?"""
    wanted = token.lower()
    return any(wanted in _TOKEN.findall(p.title.lower()) for p in retrieved.values())


def _price_problems(sentence: str, product: Product | None, product_id: str) -> list[str]:
    if product is None or product.price is None:
        return []
    catalog = product.price
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


class _Catalog:
    """The catalog as of answer time, read once per product; the tool's copy if it is down."""

    def __init__(self, retrieved: Mapping[str, Product], lookup: Lookup | None) -> None:
        self.retrieved = retrieved
        self.lookup = lookup
        self.notes: list[str] = []
        self._read: dict[str, Product | None] = {}

    def current(self, product_id: str) -> Product | None:
        """``None`` when the product is gone from the catalog."""
        if product_id not in self._read:
            self._read[product_id] = self._fetch(product_id)
        return self._read[product_id]

    def has(self, token: str) -> bool:
        if self.lookup is None:
            return False
        try:
            return self.lookup(token) is not None
        except SearchError:
            return False

    def _fetch(self, product_id: str) -> Product | None:
        copy = self.retrieved.get(product_id)
        if self.lookup is None:
            return copy
        try:
            product = self.lookup(product_id)
        except SearchError as error:
            self.notes.append(f"catalog re-read failed for {product_id}: {error}")
            return copy
        if product is None:
            self.notes.append(f"{product_id} is no longer in the catalog")
        return product

    def shown(self, product_ids: Sequence[str]) -> list[ShownProduct]:
        products = [p for p in (self.current(pid) for pid in product_ids) if p is not None]
        return [ShownProduct.from_product(i, p) for i, p in enumerate(products, start=1)]
