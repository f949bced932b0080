"""One query model for every backend, so the agent writes a request once and any backend runs it."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tools.catalog.product import Product, normalise_attribute_key, parse_price
from tools.errors import BadInput
from tools.text import valid_text

#: Fields a lexical request may boost. Backends map them onto their own schema.
SEARCH_FIELDS: tuple[str, ...] = ("title", "brand", "category", "description", "attributes")
DEFAULT_BOOSTS: dict[str, float] = {
    "title": 3.0,
    "brand": 2.0,
    "category": 1.5,
    "description": 1.0,
    "attributes": 0.5,
}
MAX_SIZE = 1000
#: Words an expansion may add, and the highest weight one may carry: added words rank
#: alongside the shopper's own (weight 1), never above them.
MAX_EXPANSIONS = 32
MAX_EXPANSION_WEIGHT = 1.0

#: ``(word, weight)``: a word searched next to the request text, its score scaled by weight.
Expansion = tuple[str, float]
#: The orders a request may ask for (``SearchRequest.sort``); relevance is the ranking itself.
RELEVANCE = "relevance"
PRICE_ASC = "price_asc"
PRICE_DESC = "price_desc"
SORTS: tuple[str, ...] = (RELEVANCE, PRICE_ASC, PRICE_DESC)


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Hard constraints. Brand/category/attribute matching is case-insensitive and exact.

    ``brands``: any of them (empty: any brand); ``excluded_brands``: none of them, so a product
    whose brand is excluded never matches, even if the same brand is also wanted.
    """

    brands: tuple[str, ...] = ()
    category: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    excluded_brands: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A blank brand or category (``--brand ''``) means no such filter, not "match nothing".
        object.__setattr__(self, "brands", tuple(b for b in self.brands if b.strip()))
        excluded = tuple(b for b in self.excluded_brands if b.strip())
        object.__setattr__(self, "excluded_brands", excluded)
        if self.category is not None and not self.category.strip():
            object.__setattr__(self, "category", None)
        low, high = self.min_price, self.max_price
        if low is not None and high is not None and low > high:
            raise BadInput(f"min_price {low} is above max_price {high}")

    def is_empty(self) -> bool:
        return not (
            self.brands
            or self.category
            or self.min_price is not None
            or self.max_price is not None
            or self.attributes
            or self.excluded_brands
        )

    def matches(self, product: Product) -> bool:
        """The reference semantics every backend must agree with (used by tests and fusion)."""
        brand = product.brand.lower()
        if self.brands and brand not in {b.lower() for b in self.brands}:
            return False
        if brand in {b.lower() for b in self.excluded_brands}:
            return False
        if self.category:
            wanted = self.category.lower()
            if not any(level.lower() == wanted for level in product.category_path):
                return False
        if self.min_price is not None or self.max_price is not None:
            if product.price is None:
                return False
            if self.min_price is not None and product.price < self.min_price:
                return False
            if self.max_price is not None and product.price > self.max_price:
                return False
        if self.attributes:
            have = {
                normalise_attribute_key(k): attribute_token(v)
                for k, v in product.attributes.items()
            }
            for key, value in self.attributes.items():
                if have.get(normalise_attribute_key(key)) != attribute_token(value):
                    return False
        return True

    def to_dict(self) -> dict[str, Any]:
        return {
            "brands": list(self.brands),
            "category": self.category,
            "min_price": None if self.min_price is None else str(self.min_price),
            "max_price": None if self.max_price is None else str(self.max_price),
            "attributes": dict(self.attributes),
            "excluded_brands": list(self.excluded_brands),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SearchFilters:
        data = data or {}
        return cls(
            brands=_names(data.get("brands")),
            excluded_brands=_names(data.get("excluded_brands")),
            category=data.get("category") or None,
            min_price=parse_price(data.get("min_price"), "min_price"),
            max_price=parse_price(data.get("max_price"), "max_price"),
            attributes={str(k): str(v) for k, v in (data.get("attributes") or {}).items()},
        )


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """Free text plus field boosts, filters, size, an optional fuzzy flag and expansions.

    ``expansions`` keep the shopper's words and add to them: each ``(word, weight)`` is
    searched in the same fields as ``text``, its score scaled by ``weight`` (0 < weight <= 1),
    so ``text`` keeps weight 1 and an added word can only lift a product that has it. This is
    the query that pseudo-relevance feedback (RM3), index-based typo correction and the
    policy's ``add_terms`` produce; both lexical backends run it as one weighted disjunction
    (``tools.search.weighted_query``). No expansions: exactly the plain request.

    ``title_match`` adds a bonus for products whose title holds every word of ``text`` and
    its adjacent words as phrases (``tools.search.title_match``); the tool path sets it, the
    raw baseline does not.

    ``sort`` (``SORTS``): ``relevance``, or the best matches ordered by price
    (``price_asc`` / ``price_desc``). No backend reads it: ``tools.search.price_order`` orders
    what the retrieval service (``SearchToolbox.run``) got back, so tantivy and Elasticsearch
    order the same way by construction.
    """

    text: str
    filters: SearchFilters = field(default_factory=SearchFilters)
    boosts: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_BOOSTS))
    size: int = 10
    fuzzy: bool = False
    expansions: tuple[Expansion, ...] = ()
    title_match: bool = False
    sort: str = RELEVANCE

    def __post_init__(self) -> None:
        # An undecodable input byte (a lone surrogate) from any path becomes U+FFFD here:
        # tantivy and the embedder both refuse to encode it.
        object.__setattr__(self, "text", valid_text(self.text))
        if not 1 <= self.size <= MAX_SIZE:
            raise BadInput(f"size must be between 1 and {MAX_SIZE}, got {self.size}")
        unknown = set(self.boosts) - set(SEARCH_FIELDS)
        if unknown:
            raise BadInput(f"unknown boost fields {sorted(unknown)}; known: {list(SEARCH_FIELDS)}")
        if self.sort not in SORTS:
            raise BadInput(f"unknown sort {self.sort!r}; one of {list(SORTS)}")
        if len(self.expansions) > MAX_EXPANSIONS:
            raise BadInput(f"at most {MAX_EXPANSIONS} expansion words, got {len(self.expansions)}")
        for word, weight in self.expansions:
            if not isinstance(word, str) or not word.strip():
                raise BadInput(f"an expansion word must be non-empty text, got {word!r}")
            if not 0 < weight <= MAX_EXPANSION_WEIGHT:
                raise BadInput(
                    f"the weight of expansion {word!r} must be in (0, {MAX_EXPANSION_WEIGHT:g}], "
                    f"got {weight}"
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "filters": self.filters.to_dict(),
            "boosts": dict(self.boosts),
            "size": self.size,
            "fuzzy": self.fuzzy,
            "expansions": [[word, weight] for word, weight in self.expansions],
            "title_match": self.title_match,
            "sort": self.sort,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchRequest:
        """The request ``to_dict`` wrote; anything else is a ``BadInput`` that says what."""
        try:
            return cls._from_dict(data)
        except BadInput:
            raise
        except (TypeError, ValueError, AttributeError) as error:
            raise BadInput(f"not a search request: {error}") from None

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> SearchRequest:
        return cls(
            text=str(data.get("text") or ""),
            filters=SearchFilters.from_dict(data.get("filters")),
            boosts=dict(data.get("boosts") or DEFAULT_BOOSTS),
            size=int(data.get("size") or 10),
            fuzzy=bool(data.get("fuzzy", False)),
            expansions=tuple(
                (str(word), float(weight)) for word, weight in data.get("expansions") or ()
            ),
            title_match=bool(data.get("title_match", False)),
            sort=str(data.get("sort") or RELEVANCE),
        )


def _names(value: Any) -> tuple[str, ...]:
    """A list of brand names as JSON wrote it (one name may be a bare string)."""
    names = (value,) if isinstance(value, str) else value or ()
    return tuple(str(name) for name in names if str(name).strip())


def attribute_token(value: object) -> str:
    """The exact-match form of an attribute value: lower case, ``16.0`` -> ``16``, bools yes/no."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = " ".join(str(value).lower().split())
    if text in {"true", "false"}:
        return "yes" if text == "true" else "no"
    return text
