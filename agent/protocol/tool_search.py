"""The one path from a parsed tool call to a search: the chat, the evals and RL all run it.

A model's call (a tool name and its arguments, however the parser found them) becomes a
``ToolSearch``: which index it reads, the ``SearchRequest`` for it, and the list of concepts or
titles when the tool takes a list. ``run_tool_search`` runs one on the search backends. The
chat's tool node (``agent.conversation.tool_node``), every eval strategy that lets a model
write the search (``evals.strategies``), ``shopagent collect`` and the GRPO reward
(``rl.rewards``) call exactly these two functions, so the policy is trained on the very search
the shopper gets.

How arguments are read, once for everyone:

- ``concepts`` / ``titles``: a list stays a list (blank items dropped); a string is split on
  ``,`` and ``;`` (``tools.search_tools.split_list``), so ``["a", "b"]`` and ``"a, b"`` search
  the same thing. The list is searched as a list, never joined and split again.
- ``query``: whitespace-collapsed; empty (or nothing but punctuation) is refused. An empty
  query would otherwise rank the first products of the catalog, which is not a search.
- ``add_terms`` (``search_products``): the words the model adds to its query, a list or a
  ``,``/``;`` string like ``concepts``; each is searched at ``ADD_TERM_WEIGHT`` next to the
  query at weight 1 (``SearchRequest.expansions``), so a call that adds nothing is exactly the
  plain search and an added word can only lift products that hold it. At most
  ``MAX_ADD_TERMS``; blank, duplicate and query words are dropped.
- ranking (``search_products``): every search also rewards products whose title holds all of
  the query's words and its adjacent words as phrases (``SearchRequest.title_match``,
  ``tools.search.title_match``); the raw baseline strategy does not, so evals can tell them apart.
- ``fix`` (``search_products``): ``{"misspeled": "misspelled"}``; each key found as a whole
  word of the query (any case) is replaced by its value before searching. Keys that are not
  in the query are ignored, so a fix can never add words the shopper did not write.
- prices: ``tools.catalog.product.parse_price`` (``"$1,299"`` is 1299; ``"abc"``, ``-5``,
  ``NaN`` and values above the ceiling are refused); ``brand`` / ``category``: blank means none.
- ``brand``: one name, or a list of names (any of them: "Sony or Samsung"); a string is one
  name, never split (a catalog's brand may hold a comma). ``exclude_brands``
  (``search_products``): a name or a list, none of which a result may have
  (``SearchFilters.excluded_brands``).
- ``sort`` (``search_products``): ``relevance`` (the default, also for blank), ``price_asc`` or
  ``price_desc``, any case; anything else is refused. A price order ranks the good matches
  by price, not every match (``tools.search.price_order``).
- concepts (``search_products``, when the caller asks with ``fuse_concepts``: the dataset's
  search setting, ``tools.settings.search_choice``): the same request runs down the toolbox's
  ``fused`` path, RRF of its keyword ranking (title match, added words and filters as above)
  and the concept index's dense ranking of the query text under the same filters; the price
  order applies to the fused ranking. A concept index that cannot answer (still building)
  leaves the keyword ranking alone, silently. Off by default: the evals and RL search exactly
  as before unless they ask.
- unknown arguments are ignored and named in ``ToolSearch.ignored``, so a trace can show them.

A refused call raises ``ToolArgumentError`` (a ``BadInput``): the chat tells the model, an eval
scores the reply 0 and RL gives it the reward of a useless call. A failing backend raises
``tools.search.backend.SearchError``, which is never the policy's fault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.protocol.strategies import FUSED_PATH, TOOL_PATHS
from agent.protocol.tool_schemas import GET_PRODUCT, SEARCH_CONCEPTS, SEARCH_PRODUCTS, schema_for
from tools.catalog.product import Product, parse_price
from tools.errors import BadInput
from tools.search.price_order import price_ordered
from tools.search.request import RELEVANCE, SORTS, SearchFilters, SearchRequest
from tools.search.results import SearchResults, ranked
from tools.search.spelling import apply_fixes
from tools.search_tools import split_list

_WORD = re.compile(r"\w", re.UNICODE)
#: The weight of a word the model adds to its query; the query's own words weigh 1. Measured
#: without a model on 500 Home Depot train queries (best of adding 1-2 of the 8 candidate words
#: of the expand prompt, against raw NDCG@10 0.384): weight 0.25 reaches 0.474 at best and
#: costs 0.011 for a random candidate; 0.5 reaches 0.494 but a random candidate costs 0.027; 1.0
#: 0.501 and 0.065. A small policy picks imperfectly, so the cheaper mistake wins.
ADD_TERM_WEIGHT = 0.25
MAX_ADD_TERMS = 8


class ToolArgumentError(BadInput):
    """A tool call whose arguments cannot be searched; the message says why, in one line."""


class SearchBackends(Protocol):
    """What a tool search needs: ``tools.search_tools.SearchToolbox`` satisfies it."""

    def run(self, strategy: str, request: SearchRequest) -> SearchResults: ...

    def search_concepts(
        self, concepts: Sequence[str], filters: SearchFilters, size: int
    ) -> SearchResults: ...

    def lookup_titles(self, titles: Sequence[str], size: int) -> SearchResults: ...

    def get(self, product_id: str) -> Product | None: ...


@dataclass(frozen=True, slots=True)
class ToolSearch:
    """What one tool call searches. ``terms`` holds the concepts or titles of a list tool."""

    tool: str
    strategy: str
    request: SearchRequest
    terms: tuple[str, ...] = ()
    product_id: str | None = None
    #: The arguments as read (prices as strings, lists as lists): what a trajectory records.
    arguments: dict[str, Any] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for a trace: the text searched and the filters applied."""
        if self.product_id is not None:
            return f"product {self.product_id}"
        text = "; ".join(self.terms) if self.terms else self.request.text
        if self.request.expansions:
            text += " + " + " ".join(word for word, _ in self.request.expansions)
        filters = [f"{k}={v}" for k, v in sorted(self.arguments.items()) if k not in _TEXT_ARGS]
        return " | ".join([text, *filters])


_TEXT_ARGS = frozenset({"query", "concepts", "titles", "product_id", "add_terms", "fix"})


def plan_tool_search(
    name: str, arguments: Mapping[str, Any], *, size: int, fuse_concepts: bool = False
) -> ToolSearch:
    """Read one call's arguments into the search it stands for (see the module docstring);
    ``fuse_concepts`` sends a ``search_products`` call down the ``fused`` path."""
    if name not in TOOL_PATHS:
        raise ToolArgumentError(f"{name!r} is not a search tool")
    if not isinstance(arguments, Mapping):
        raise ToolArgumentError(f"{name} arguments must be an object")
    known = set(schema_for(name)["function"]["parameters"]["properties"])
    ignored = tuple(sorted(str(k) for k in arguments if k not in known))
    args = {k: v for k, v in arguments.items() if k in known}
    strategy = TOOL_PATHS[name]
    if name == GET_PRODUCT:
        product_id = _text(args.get("product_id"))
        if not product_id:
            raise ToolArgumentError("get_product needs a product_id")
        read = {"product_id": product_id}
        request = SearchRequest(product_id, size=1)
        return ToolSearch(name, strategy, request, (), product_id, read, ignored)
    filters, read = _filters(args)
    if name == SEARCH_PRODUCTS:
        query = _text(args.get("query"))
        if not _WORD.search(query):
            raise ToolArgumentError("search_products needs a query with at least one word")
        query, fixes = _apply_fixes(query, args.get("fix"))
        added = _added_terms(args.get("add_terms"), query)
        expansions = tuple((word, ADD_TERM_WEIGHT) for word in added)
        sort = _sort(args.get("sort"))
        request = SearchRequest(
            query, filters, size=size, expansions=expansions, title_match=True, sort=sort
        )
        read = {"query": query, **read}
        if sort != RELEVANCE:
            read["sort"] = sort
        if fixes:
            read["fix"] = fixes
        if added:
            read["add_terms"] = list(added)
        if fuse_concepts:
            strategy = FUSED_PATH
        return ToolSearch(name, strategy, request, (), None, read, ignored)
    list_arg = "concepts" if name == SEARCH_CONCEPTS else "titles"
    terms = tuple(t for t in _list(args.get(list_arg)) if _WORD.search(t))
    if not terms:
        raise ToolArgumentError(f"{name} needs at least one non-empty item in {list_arg}")
    request = SearchRequest(", ".join(terms), filters, size=size)
    read = {list_arg: list(terms), **read}
    return ToolSearch(name, strategy, request, terms, None, read, ignored)


def run_tool_search(search: ToolSearch, backends: SearchBackends) -> SearchResults:
    """Run a planned search; a failing backend raises ``SearchError``."""
    request = search.request
    if search.strategy == "get":
        product = backends.get(str(search.product_id))
        hits = [(product, 1.0)] if product is not None else []
        return SearchResults(hits=ranked(hits), backend="get", total=len(hits))
    if search.strategy == "concepts":
        # a keyword search in the concept index's stead keeps its order (``fallback_search``)
        return price_ordered(
            request, lambda deep: backends.search_concepts(search.terms, deep.filters, deep.size)
        )
    if search.strategy == "direct":
        return backends.lookup_titles(search.terms, request.size)
    return backends.run(search.strategy, request)


def search_tool_call(
    name: str,
    arguments: Mapping[str, Any],
    backends: SearchBackends,
    *,
    size: int,
    fuse_concepts: bool = False,
) -> tuple[ToolSearch, SearchResults]:
    """``plan_tool_search`` then ``run_tool_search``: a call in, its ranked results out."""
    search = plan_tool_search(name, arguments, size=size, fuse_concepts=fuse_concepts)
    return search, run_tool_search(search, backends)


def fallback_search(search: ToolSearch) -> ToolSearch | None:
    """The same request on the other index, for when this one's backend is down.

    Keywords become one concept; concepts become one keyword query. Titles and product
    lookups have no other index to try.
    """
    request = search.request
    if search.tool == SEARCH_PRODUCTS:
        terms = (request.text,)
        return ToolSearch(
            SEARCH_CONCEPTS, "concepts", request, terms, None, {"concepts": list(terms)}
        )
    if search.tool == SEARCH_CONCEPTS:
        text = " ".join(search.terms)
        fallback = SearchRequest(text, request.filters, size=request.size)
        return ToolSearch(SEARCH_PRODUCTS, "lexical", fallback, (), None, {"query": text})
    return None


def _filters(args: Mapping[str, Any]) -> tuple[SearchFilters, dict[str, Any]]:
    brands = _names(args.get("brand"))
    excluded = _names(args.get("exclude_brands"))
    category = _text(args.get("category"))
    try:
        min_price = parse_price(_scalar(args.get("min_price")), "min_price")
        max_price = parse_price(_scalar(args.get("max_price")), "max_price")
    except BadInput as error:
        raise ToolArgumentError(str(error)) from None
    if min_price is not None and max_price is not None and min_price > max_price:
        raise ToolArgumentError(f"min_price {min_price} is above max_price {max_price}")
    read: dict[str, Any] = {}
    if brands:
        read["brand"] = brands[0] if len(brands) == 1 else list(brands)
    if excluded:
        read["exclude_brands"] = list(excluded)
    if category:
        read["category"] = category
    if min_price is not None:
        read["min_price"] = str(min_price)
    if max_price is not None:
        read["max_price"] = str(max_price)
    filters = SearchFilters(
        brands=brands,
        category=category or None,
        min_price=min_price,
        max_price=max_price,
        excluded_brands=excluded,
    )
    return filters, read


def _names(value: Any) -> tuple[str, ...]:
    """Brand names from a string (one name, never split) or a list; blanks and repeats
    (any case) dropped."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list | tuple) else []
    kept: dict[str, str] = {}
    for item in items:
        name = _text(item) if isinstance(item, str) else ""
        if name:
            kept.setdefault(name.lower(), name)
    return tuple(kept.values())


def _sort(value: Any) -> str:
    """The ``sort`` argument as one of ``SORTS``: blank is relevance, an unknown order is
    refused (the schema lists the three)."""
    sort = _text(value).lower()
    if not sort:
        return RELEVANCE
    if sort not in SORTS:
        raise ToolArgumentError(f"sort must be one of {', '.join(SORTS)}, got {sort!r}")
    return sort


def _apply_fixes(query: str, fix: Any) -> tuple[str, dict[str, str]]:
    """The ``fix`` argument read as ``{wrong: right}`` text pairs and applied to the query."""
    if not isinstance(fix, Mapping):
        return query, {}
    pairs = [(_text(wrong), _text(right)) for wrong, right in fix.items()]
    return apply_fixes(query, [(w, r) for w, r in pairs if _WORD.search(r)])


def _added_terms(value: Any, query: str) -> tuple[str, ...]:
    """Distinct added words that are not already words of the query, at most ``MAX_ADD_TERMS``."""
    own = {word.lower() for word in query.split()}
    kept: dict[str, str] = {}
    for item in _list(value):
        if _WORD.search(item) and item.lower() not in own:
            kept.setdefault(item.lower(), item)
    return tuple(kept.values())[:MAX_ADD_TERMS]


def _scalar(value: Any) -> Any:
    if isinstance(value, list | dict | tuple):
        raise ToolArgumentError(f"a price must be a number, got {type(value).__name__}")
    return value


def _text(value: Any) -> str:
    if value is None or isinstance(value, list | dict | tuple | bool):
        return ""
    return " ".join(str(value).split())


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        return split_list(value)
    if isinstance(value, list | tuple):
        return [
            " ".join(str(item).split()) for item in value if isinstance(item, str | int | float)
        ]
    return []
