"""One path from a tool call to a search: the chat's tool, the eval strategy and the RL reward
must send the same request to the backends and get the same ranking for the same call.

The same calls (a concepts list and the same concepts comma-joined, an empty query, prices as
``"$1,299"``, ``"abc"``, -5 and NaN, unknown arguments) go through:

- the chat: the LangChain tool the agent's ToolNode runs (``AgentTools.as_tools()``);
- the eval: ``WrittenSearchStrategy`` with a writer that replies with exactly that call;
- RL: ``search_reward`` with ``LiveSearch``, as ``shopagent collect`` and GRPO score it.

The backends are a real in-memory tantivy index and a small word-overlap concept index; a
recording toolbox keeps every request the backends receive.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.conversation.state import AgentLimits
from agent.conversation.tool_node import AgentTools
from agent.protocol.tool_calls import parse_tool_calls
from agent.protocol.tool_schemas import (
    SEARCH_CONCEPTS,
    SEARCH_PRODUCTS,
    SEARCH_TITLES,
    schema_for,
)
from agent.protocol.tool_search import ToolArgumentError
from agent.protocol.writer_prompts import Prompt
from evals.strategies import WrittenSearchStrategy
from rl.rewards import LiveSearch, search_reward
from tests.catalog_samples import sample_products
from tools.catalog.product import Product
from tools.search.request import SearchFilters, SearchRequest
from tools.search.results import SearchResults, ranked
from tools.search.tantivy_backend import TantivyIndex
from tools.search_tools import SearchToolbox
from tools.settings.config import Settings

SIZE = 10


class WordOverlapConcepts:
    """A concept index that ranks products by how many concept words their text holds."""

    def __init__(self, products: Sequence[Product]) -> None:
        self.products = list(products)

    def _rank(self, phrases: Sequence[str], filters: SearchFilters | None, size: int):
        words = {w for phrase in phrases for w in re.findall(r"\w+", phrase.lower())}
        scored = []
        for product in self.products:
            text = f"{product.title} {product.description}".lower()
            score = len(words & set(re.findall(r"\w+", text)))
            if score and (filters is None or filters.matches(product)):
                scored.append((product, float(score)))
        scored.sort(key=lambda pair: (-pair[1], pair[0].id))
        return SearchResults(hits=ranked(scored[:size]), backend="concepts")

    def search_concepts(self, concepts: Sequence[str], filters: SearchFilters, size: int):
        return self._rank(concepts, filters, size)

    def lookup_titles(self, titles: Sequence[str], size: int):
        return self._rank(titles, None, size)

    def get(self, product_id: str) -> Product | None:
        return next((p for p in self.products if p.id == product_id), None)


class RecordingToolbox(SearchToolbox):
    """The real toolbox, recording what reaches the backends."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings, "samples")
        self.requests: list[tuple[Any, ...]] = []

    def run(self, strategy: str, request: SearchRequest) -> SearchResults:
        self.requests.append(("run", strategy, request))
        return super().run(strategy, request)

    def search_concepts(self, concepts, filters, size):  # type: ignore[override]
        self.requests.append(("concepts", tuple(concepts), filters, size))
        return super().search_concepts(concepts, filters, size)

    def lookup_titles(self, titles, size):  # type: ignore[override]
        self.requests.append(("titles", tuple(titles), size))
        return super().lookup_titles(titles, size)


@pytest.fixture()
def toolbox(tmp_path: Path) -> RecordingToolbox:
    box = RecordingToolbox(Settings(home=tmp_path / "home", lexical_backend="tantivy"))
    lexical = TantivyIndex(None, create=True)
    lexical.index(sample_products())
    box.__dict__["lexical"] = lexical
    box.__dict__["concepts"] = WordOverlapConcepts(sample_products())
    return box


def as_reply(name: str, arguments: dict[str, Any]) -> str:
    return f"<tool_call>{json.dumps({'name': name, 'arguments': arguments})}</tool_call>"


# -- the three callers -------------------------------------------------------------------------


def through_chat(box: RecordingToolbox, name: str, arguments: dict[str, Any]):
    """The agent's LangChain tool, as its ToolNode invokes it."""
    tools = {t.name: t for t in AgentTools(box, AgentLimits(results_per_search=SIZE)).as_tools()}
    box.requests.clear()
    if name not in tools:  # search_titles is an eval/RL tool only
        return None
    try:
        message = tools[name].invoke(
            {"type": "tool_call", "name": name, "args": arguments, "id": "c1"}
        )
    except ToolArgumentError as error:
        return ("refused", str(error), list(box.requests))
    ids = [p["id"] for p in message.artifact["products"]]
    return ("searched", ids, list(box.requests))


def through_eval(box: RecordingToolbox, name: str, arguments: dict[str, Any]):
    """``shopagent eval``'s strategy with a writer that writes exactly this call."""

    def writer(prompts: Sequence[Prompt]) -> list[str]:
        return [as_reply(name, arguments) for _ in prompts]

    strategy = WrittenSearchStrategy(name, name, frozenset({"lexical"}), writer, box)
    box.requests.clear()
    results, trace = strategy.retrieve("the shopper's words", SIZE)
    if trace.error:
        return ("refused", trace.error, list(box.requests))
    return ("searched", results.ids, list(box.requests))


def through_rl(box: RecordingToolbox, name: str, arguments: dict[str, Any]):
    """The RL reward (collect and GRPO): parse the reply, run it live, score it."""
    parsed = parse_tool_calls(as_reply(name, arguments), [schema_for(name)])
    search = LiveSearch(box, size=SIZE)
    box.requests.clear()
    breakdown = search_reward(parsed, {"m1": 3, "h1": 2}, search)
    if breakdown.error:
        return ("refused", breakdown.error, list(box.requests))
    assert search.last is not None
    return ("searched", search.last.ids, list(box.requests))


CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("keywords", SEARCH_PRODUCTS, {"query": "gaming mouse"}),
    ("keywords with filters", SEARCH_PRODUCTS, {"query": "mouse", "brand": "Logitech"}),
    ("price with a sign and commas", SEARCH_PRODUCTS, {"query": "mouse", "max_price": "$1,299"}),
    ("price as words", SEARCH_PRODUCTS, {"query": "mouse", "max_price": "abc"}),
    ("negative price", SEARCH_PRODUCTS, {"query": "mouse", "min_price": -5}),
    ("NaN price", SEARCH_PRODUCTS, {"query": "mouse", "max_price": "NaN"}),
    ("empty query", SEARCH_PRODUCTS, {"query": ""}),
    ("punctuation query", SEARCH_PRODUCTS, {"query": "((("}),
    ("unknown arguments", SEARCH_PRODUCTS, {"query": "headphones", "colour": "red", "x": 1}),
    ("concepts list", SEARCH_CONCEPTS, {"concepts": ["noise cancelling", "bluetooth"]}),
    ("concepts joined", SEARCH_CONCEPTS, {"concepts": "noise cancelling, bluetooth"}),
    ("empty concepts", SEARCH_CONCEPTS, {"concepts": []}),
    ("titles", SEARCH_TITLES, {"titles": ["Logitech MX Master 3"]}),
]


@pytest.mark.parametrize(("case", "name", "arguments"), CALLS, ids=[c[0] for c in CALLS])
def test_chat_eval_and_rl_send_the_same_request_and_get_the_same_ranking(
    toolbox: RecordingToolbox, case: str, name: str, arguments: dict[str, Any]
) -> None:
    outcomes = [
        outcome
        for outcome in (
            through_chat(toolbox, name, arguments),
            through_eval(toolbox, name, arguments),
            through_rl(toolbox, name, arguments),
        )
        if outcome is not None
    ]
    assert len(outcomes) >= 2
    first = outcomes[0]
    for other in outcomes[1:]:
        assert other[0] == first[0] and other[2] == first[2], case  # same outcome and request
        if first[0] == "searched":
            assert other[1] == first[1], case  # same ranking
    kind, result, requests = first
    if kind == "searched":
        assert len(requests) == 1, "one backend request per call"
    else:
        assert requests == [], "a refused call reaches no backend"
        assert result  # the reason, one line


def test_a_concepts_list_and_the_same_concepts_joined_search_alike(
    toolbox: RecordingToolbox,
) -> None:
    as_list = through_rl(toolbox, SEARCH_CONCEPTS, {"concepts": ["noise cancelling", "bluetooth"]})
    joined = through_rl(toolbox, SEARCH_CONCEPTS, {"concepts": "noise cancelling; bluetooth"})
    assert as_list == joined
    assert as_list[2][0][1] == ("noise cancelling", "bluetooth")  # searched as a list
    assert as_list[1][:1] == ["h1"]


def test_prices_are_read_once_for_every_caller(toolbox: RecordingToolbox) -> None:
    call = {"query": "mouse", "max_price": "$50"}
    _, ids, requests = through_chat(toolbox, SEARCH_PRODUCTS, call)
    request = requests[0][2]
    assert str(request.filters.max_price) == "50"
    assert ids and set(ids) <= {"m1", "m2"}
    refused = {
        through_rl(toolbox, SEARCH_PRODUCTS, {"query": "mouse", "max_price": value})[1]
        for value in ("abc", "NaN", "-5", "1e400")
    }
    assert len(refused) == 4 and all("max_price" in str(reason) for reason in refused)
