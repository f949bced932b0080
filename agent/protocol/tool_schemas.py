"""The agent's tool schemas, in OpenAI function-calling form, defined once.

The prompt template, the tool-call parser, the rollout generator and the LangGraph agent all
read these, so the names a small model learns are the names the real tools are bound to. Names
and arguments are short and flat on purpose: every token of schema is prompt a 135M model has
to attend over.
"""

from __future__ import annotations

import copy
from typing import Any

from tools.search.request import SORTS

SEARCH_PRODUCTS = "search_products"
SEARCH_CONCEPTS = "search_concepts"
GET_PRODUCT = "get_product"
#: The ``direct`` strategy's tool: imagined product titles, matched to real ones. The chat
#: agent is not offered it; the eval and RL writers are.
SEARCH_TITLES = "search_titles"


def _function(
    name: str, description: str, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


_PRICE_MAX = {"type": "number", "description": "Highest price in dollars."}
_PRICE_MIN = {"type": "number", "description": "Lowest price in dollars."}
_BRAND = {"type": "string", "description": "Brand name, e.g. Sony."}

TOOL_SCHEMAS: tuple[dict[str, Any], ...] = (
    _function(
        SEARCH_PRODUCTS,
        "Keyword search of the product catalog.",
        {
            "query": {"type": "string", "description": "Keywords describing the product."},
            "add_terms": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Extra words the right products use, added to the query.",
            },
            "fix": {
                "type": "object",
                "description": "Misspelled query words and their fixes, e.g. {'vaccum': 'vacuum'}.",
            },
            "brand": _BRAND,
            "max_price": _PRICE_MAX,
            "min_price": _PRICE_MIN,
            "category": {"type": "string", "description": "Product category, e.g. laptops."},
            "exclude_brands": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Brands to leave out.",
            },
            "sort": {
                "type": "string",
                "enum": list(SORTS),
                "description": "Result order; relevance unless asked.",
            },
        },
        ["query"],
    ),
    _function(
        SEARCH_CONCEPTS,
        "Semantic search by short concepts the product should match.",
        {
            "concepts": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Short phrases, e.g. ['noise cancelling', 'for travel'].",
            },
            "max_price": _PRICE_MAX,
            "brand": _BRAND,
        },
        ["concepts"],
    ),
    _function(
        GET_PRODUCT,
        "Full details of one product by its id.",
        {"product_id": {"type": "string", "description": "The id from a search result."}},
        ["product_id"],
    ),
)

SEARCH_TITLES_SCHEMA: dict[str, Any] = _function(
    SEARCH_TITLES,
    "Find catalog products by the titles of products that would fit.",
    {
        "titles": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Full product titles, e.g. ['Logitech MX Master 3 mouse'].",
        }
    },
    ["titles"],
)

TOOL_NAMES: frozenset[str] = frozenset(schema["function"]["name"] for schema in TOOL_SCHEMAS)


def schema_for(name: str) -> dict[str, Any]:
    """The schema of one tool by name, the chat tools and ``search_titles`` alike."""
    for schema in (*TOOL_SCHEMAS, SEARCH_TITLES_SCHEMA):
        if schema["function"]["name"] == name:
            return schema
    raise ValueError(f"unknown tool {name!r}")


def tool_schemas() -> list[dict[str, Any]]:
    """A fresh copy, safe for callers that add fields (e.g. ``strict``) before sending."""
    return copy.deepcopy(list(TOOL_SCHEMAS))
