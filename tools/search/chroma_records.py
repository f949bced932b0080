"""How a Product becomes a Chroma record, and how SearchFilters become a Chroma ``where``.

The embedded text is title, brand, category and the start of the description. The title
names the product; brand and category place it among concepts a shopper asks for
("Logitech", "laptop"); the description adds use and feature words. It is cut at
``DESCRIPTION_CHARS`` because MiniLM was trained on 128-token inputs and truncates at 256,
and mean pooling over a long description drowns out the title. Attributes are left out of
the text: their key/value lists read as noise to a sentence encoder, and filters match
them exactly instead.

Metadata holds what filters need, normalised the way ``SearchFilters.matches`` compares:

- ``brand_lc``: the brand in lower case (``$in``);
- ``categories_lc``: every category level in lower case, as a string list (``$contains``;
  Chroma 1.x stores lists of scalars in metadata);
- ``price``: a float (``$gte`` / ``$lte``). Rounding a Decimal to the nearest float is
  monotonic, so no in-range price falls outside the float range; the edge cases the other
  way round are removed by checking ``matches`` on every hit;
- ``attr_tokens``: ``"<normalised key>=<attribute_token(value)>"`` for every attribute
  (``$contains``). Unbounded in the number of keys. Limits: only equality, as in
  ``SearchFilters``; a key that contains ``=`` could collide with another key's token, and
  two keys that normalise alike both appear -- ``matches`` removes such false hits;
- ``product``: the full ``Product.to_dict()`` JSON, so hits rebuild the exact product
  (Decimal price included) without a second store.

Chroma's upsert merges metadata into an existing record, so every key is always written;
absent values are written as None, which deletes a stale key.
"""

from __future__ import annotations

import json
from typing import Any

from tools.catalog.product import Product, normalise_attribute_key
from tools.search.request import SearchFilters, attribute_token

DESCRIPTION_CHARS = 400
#: Bump whenever ``embedding_text`` changes: a resumed build compares catalog fingerprints
#: that include it, so vectors of two recipes never share a collection.
EMBEDDING_TEXT_VERSION = 1
PRODUCT_KEY = "product"


def embedding_text(product: Product) -> str:
    """The text the encoder sees for a product."""
    parts = [product.title.strip()]
    brand = product.brand.strip()
    if brand and brand.lower() not in product.title.lower():
        parts.append(brand)
    if product.category_path:
        parts.append(product.category)
    description = _shorten(product.description, DESCRIPTION_CHARS)
    if description:
        parts.append(description)
    return ". ".join(parts)


def record_metadata(product: Product) -> dict[str, Any]:
    """Filter fields plus the product itself; every key present, None where absent."""
    categories = list(dict.fromkeys(level.lower() for level in product.category_path if level))
    tokens = list(
        dict.fromkeys(
            f"{normalise_attribute_key(key)}={attribute_token(value)}"
            for key, value in product.attributes.items()
        )
    )
    return {
        "brand_lc": product.brand.lower(),
        "categories_lc": categories or None,
        "price": None if product.price is None else float(product.price),
        "attr_tokens": tokens or None,
        PRODUCT_KEY: json.dumps(product.to_dict(), ensure_ascii=False),
    }


def product_from_metadata(metadata: dict[str, Any]) -> Product:
    return Product.from_dict(json.loads(str(metadata[PRODUCT_KEY])))


def chroma_where(filters: SearchFilters) -> dict[str, Any] | None:
    """The Chroma ``where`` clause for ``filters``; None when there is nothing to filter."""
    clauses: list[dict[str, Any]] = []
    if filters.brands:
        brands = sorted({brand.lower() for brand in filters.brands})
        clauses.append({"brand_lc": {"$in": brands}})
    if filters.excluded_brands:
        excluded = sorted({brand.lower() for brand in filters.excluded_brands})
        clauses.append({"brand_lc": {"$nin": excluded}})
    if filters.category:
        clauses.append({"categories_lc": {"$contains": filters.category.lower()}})
    if filters.min_price is not None:
        clauses.append({"price": {"$gte": float(filters.min_price)}})
    if filters.max_price is not None:
        clauses.append({"price": {"$lte": float(filters.max_price)}})
    for key, value in filters.attributes.items():
        token = f"{normalise_attribute_key(key)}={attribute_token(value)}"
        clauses.append({"attr_tokens": {"$contains": token}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _shorten(text: str, limit: int) -> str:
    """``text`` with whitespace collapsed, cut at a word boundary within ``limit`` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return cut[:space] if space > limit // 2 else cut
