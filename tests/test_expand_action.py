"""The action that keeps the shopper's words: ``add_terms`` / ``fix`` read by the one tool-call
path, the ``expand`` writer prompt with candidate words, and the rm3 / fuzzy / expand eval
strategies, on a real tiny tantivy index."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.protocol.tool_calls import parse_tool_calls
from agent.protocol.tool_schemas import SEARCH_PRODUCTS, schema_for
from agent.protocol.tool_search import (
    ADD_TERM_WEIGHT,
    MAX_ADD_TERMS,
    plan_tool_search,
    search_tool_call,
)
from agent.protocol.writer_prompts import (
    EXPAND_SYSTEM_PROMPT,
    Prompt,
    build_prompt,
    strategy_prompt,
)
from evals.strategies import PLAIN_STRATEGIES, STRATEGY_NAMES, build_strategy
from tests.catalog_samples import sample_products, sample_toolbox
from tools.catalog.product import Product
from tools.errors import BadInput
from tools.search.chroma_build_state import IndexBuilding
from tools.search.expand_hints import FEEDBACK, NEIGHBOURS, expand_hints
from tools.search.neighbour_words import neighbour_words
from tools.search.request import SearchFilters, SearchRequest
from tools.search.results import SearchResults, ranked
from tools.search_tools import SearchToolbox


@pytest.fixture()
def toolbox(tmp_path: Path) -> SearchToolbox:
    return sample_toolbox(tmp_path / "home", concepts=True)


def with_indexes(toolbox: SearchToolbox, lexical: object, concepts: object) -> SearchToolbox:
    """The same retrieval service over other indexes (set in its cached properties' slots)."""
    other = SearchToolbox(toolbox.settings, toolbox.dataset)
    other.__dict__.update(lexical=lexical, concepts=concepts)
    return other


def test_the_schema_offers_add_terms_and_fix_and_the_parser_accepts_them() -> None:
    properties = schema_for(SEARCH_PRODUCTS)["function"]["parameters"]["properties"]
    assert properties["add_terms"]["type"] == "array" and properties["fix"]["type"] == "object"
    arguments = {"query": "mouse", "add_terms": ["wireless"], "fix": {"mouse": "mice"}}
    reply = (
        f"<tool_call>{json.dumps({'name': SEARCH_PRODUCTS, 'arguments': arguments})}</tool_call>"
    )
    parsed = parse_tool_calls(reply, [schema_for(SEARCH_PRODUCTS)])
    assert parsed.parse_class.value == "valid" and parsed.calls[0].arguments == arguments


def test_add_terms_become_lower_weight_expansions_of_the_kept_query() -> None:
    search = plan_tool_search(
        SEARCH_PRODUCTS,
        {"query": "gaming mouse", "add_terms": ["wireless", "Mouse", "wireless", " ", "rgb"]},
        size=10,
    )
    assert search.request.text == "gaming mouse"
    # duplicates, blanks and the query's own words are dropped
    assert search.request.expansions == (("wireless", ADD_TERM_WEIGHT), ("rgb", ADD_TERM_WEIGHT))
    assert 0 < ADD_TERM_WEIGHT < 1
    assert search.arguments["add_terms"] == ["wireless", "rgb"]
    assert search.describe() == "gaming mouse + wireless rgb"
    as_text = plan_tool_search(SEARCH_PRODUCTS, {"query": "mouse", "add_terms": "a, b"}, size=5)
    assert [w for w, _ in as_text.request.expansions] == ["a", "b"]
    many = [f"w{i}" for i in range(20)]
    capped = plan_tool_search(SEARCH_PRODUCTS, {"query": "mouse", "add_terms": many}, size=5)
    assert len(capped.request.expansions) == MAX_ADD_TERMS


def test_fix_replaces_whole_words_of_the_query_only() -> None:
    search = plan_tool_search(
        SEARCH_PRODUCTS,
        {
            "query": "Logitek wireles mouse",
            "fix": {"logitek": "logitech", "wireles": "wireless", "keyboard": "piano", "se": "x"},
        },
        size=10,
    )
    assert search.request.text == "logitech wireless mouse"
    assert search.arguments["fix"] == {"logitek": "logitech", "wireles": "wireless"}
    untouched = plan_tool_search(SEARCH_PRODUCTS, {"query": "mouse", "fix": "mouse"}, size=5)
    assert untouched.request == SearchRequest("mouse", size=5, title_match=True)


def test_a_call_that_adds_nothing_is_the_plain_search_with_the_title_match(
    toolbox: SearchToolbox,
) -> None:
    raw = toolbox.lexical.search(SearchRequest("gaming mouse", size=10, title_match=True))
    for arguments in (
        {"query": "gaming mouse"},
        {"query": "gaming mouse", "add_terms": []},
        {"query": "gaming mouse", "add_terms": ["gaming"], "fix": {}},
    ):
        _, results = search_tool_call(SEARCH_PRODUCTS, arguments, toolbox, size=10)
        assert [(h.product_id, h.score) for h in results.hits] == [
            (h.product_id, h.score) for h in raw.hits
        ]


def test_the_expand_prompt_shows_the_respelled_request_and_neighbour_words(
    toolbox: SearchToolbox,
) -> None:
    prompt = strategy_prompt("expand", "logitek gaming mouse", toolbox)
    system, example_user, example_call, user = prompt.messages
    assert system["content"] == EXPAND_SYSTEM_PROMPT
    # the worked example is a well-formed expand call that the one tool-call path reads
    parsed = parse_tool_calls(str(example_call["content"]), [schema_for(SEARCH_PRODUCTS)])
    assert parsed.parse_class.value == "valid"
    example = plan_tool_search(SEARCH_PRODUCTS, parsed.calls[0].arguments, size=10)
    assert example.request.text == "wireless headphones"
    assert example.request.expansions == (("bluetooth", ADD_TERM_WEIGHT),)
    # it copies the request line and adds the first candidate word, as the policy should
    example_words, example_candidates = str(example_user["content"]).split("\n")
    assert example_words == parsed.calls[0].arguments["query"]
    first = example_candidates.removeprefix("Candidate words: ").split(", ")[0]
    assert parsed.calls[0].arguments["add_terms"] == [first]

    # the request is shown in the catalog's spelling: the system fixed the typo
    words, candidates_line = str(user["content"]).split("\n")
    assert words == "logitech gaming mouse"
    candidates = candidates_line.removeprefix("Candidate words: ").split(", ")
    assert candidates and not {"logitech", "gaming", "mouse"} & set(candidates)
    # every candidate is a word of a title among the products nearest to the fixed request
    near = toolbox.concepts.search_dense("logitech gaming mouse", size=10).hits
    titles = " ".join(hit.product.title for hit in near).lower()
    assert all(word in titles for word in candidates)
    assert prompt.tools == (schema_for(SEARCH_PRODUCTS),)
    # the rewrite style is the unchanged policy prompt
    assert strategy_prompt("policy", "gaming mouse") == build_prompt(
        SEARCH_PRODUCTS, "gaming mouse"
    )
    with pytest.raises(ValueError, match="tantivy"):
        strategy_prompt("expand", "gaming mouse")


def test_without_a_dense_index_the_candidates_are_feedback_words(toolbox: SearchToolbox) -> None:
    lexical_only = with_indexes(toolbox, toolbox.lexical, None)
    user = strategy_prompt("expand", "gaming mouse", lexical_only).messages[-1]
    words, candidates_line = str(user["content"]).split("\n")
    assert words == "gaming mouse"
    candidates = candidates_line.removeprefix("Candidate words: ").split(", ")
    top_text = " ".join(
        f"{h.product.title} {h.product.brand} {h.product.category} {h.product.description}"
        for h in toolbox.lexical.search(SearchRequest("gaming mouse")).hits
    ).lower()
    assert candidates and all(word in top_text for word in candidates)


class EchoWriter:
    """Copies the shopper's words (the first line of the prompt) and adds the first candidate."""

    def __init__(self) -> None:
        self.prompts: list[Prompt] = []

    def __call__(self, prompts: Sequence[Prompt]) -> list[str]:
        self.prompts.extend(prompts)
        replies = []
        for prompt in prompts:
            words, candidates = str(prompt.messages[-1]["content"]).split("\n")
            first = candidates.removeprefix("Candidate words: ").split(", ")[0]
            arguments = {"query": words, "add_terms": [first]}
            body = json.dumps({"name": SEARCH_PRODUCTS, "arguments": arguments})
            replies.append(f"<tool_call>{body}</tool_call>")
        return replies


def test_expand_strategy_searches_what_the_writer_added(toolbox: SearchToolbox) -> None:
    writer = EchoWriter()
    strategy = build_strategy("expand", toolbox, writer)
    results, trace = strategy.retrieve("gaming mouse", 10)
    assert writer.prompts[0].messages[0]["content"] == EXPAND_SYSTEM_PROMPT
    assert trace.parse_class == "valid" and trace.written.startswith("gaming mouse + ")
    added = trace.written.split(" + ")[1].split(" | ")[0]
    expected = toolbox.lexical.search(
        SearchRequest("gaming mouse", size=10, expansions=((added, ADD_TERM_WEIGHT),))
    )
    assert results.ids == expected.ids


def test_rm3_fuzzy_and_spelled_are_plain_strategies(toolbox: SearchToolbox) -> None:
    assert {"rm3", "fuzzy", "spelled"} <= set(PLAIN_STRATEGIES) <= set(STRATEGY_NAMES)
    fuzzy = build_strategy("fuzzy", toolbox)
    results, trace = fuzzy.retrieve("logitek mouse", 10)
    assert trace.written == "logitek mouse + logitech^1"
    assert set(results.ids[:2]) == {"m1", "m3"}
    exact, trace = fuzzy.retrieve("gaming mouse", 10)
    assert trace.written == "gaming mouse"
    assert exact.ids == toolbox.lexical.search(SearchRequest("gaming mouse", size=10)).ids
    # spelled: what the expand prompt shows its model, searched as is (the model's zero point)
    spelled = build_strategy("spelled", toolbox)
    results, trace = spelled.retrieve('logitek mouse 8"', 10)
    assert trace.written == "logitech mouse 8 in."
    assert results.ids == toolbox.lexical.search(SearchRequest(trace.written, size=10)).ids
    assert trace.written == expand_hints(toolbox.lexical, 'logitek mouse 8"').text
    rm3 = build_strategy("rm3", toolbox)
    request = rm3.request_for("gaming mouse", 10)  # type: ignore[attr-defined]
    assert request.text == "gaming mouse" and request.size == 10
    results, trace = rm3.retrieve("gaming mouse", 10)
    assert results.ids == toolbox.lexical.search(request).ids


def test_rm3_refuses_a_backend_without_term_statistics(toolbox: SearchToolbox) -> None:
    class NoStatistics:
        name = "elasticsearch"

    toolbox.__dict__["lexical"] = NoStatistics()  # the cached_property's slot
    with pytest.raises(BadInput, match="term statistics"):
        build_strategy("rm3", toolbox)


class NearestFirst:
    """A dense index whose nearest products are given in order (the vote counting is tested
    here; the real Chroma neighbours are tested above)."""

    def __init__(self, products: list[Product]) -> None:
        self.products = products

    def search_dense(
        self, text: str, filters: SearchFilters | None = None, size: int = 10
    ) -> SearchResults:
        return SearchResults(ranked([(p, 1.0) for p in self.products[:size]]), backend="dense")


def test_neighbour_words_are_ordered_by_votes_then_nearness(toolbox: SearchToolbox) -> None:
    products = {p.id: p for p in sample_products()}
    nearest = NearestFirst([products[i] for i in ("m3", "m1", "m2", "h1")])
    words = neighbour_words(nearest, toolbox.lexical, "mouse", 8, max_df_ratio=0.5)
    # "logitech", "wireless" and "gaming" are in two of the four titles each, the first two
    # in the nearest one; "mouse" is the request's own word; numbers and 2-letter words never
    # count
    assert words[:4] == ["logitech", "wireless", "gaming", "master"]
    assert "mouse" not in words and "g203" in words and "mx" not in words and "3" not in words
    assert neighbour_words(nearest, toolbox.lexical, "mouse", 1, max_df_ratio=0.5) == ["logitech"]
    # in 8 products, 10% is less than one title: words of two titles are too common
    assert "logitech" not in neighbour_words(nearest, toolbox.lexical, "mouse", 8)
    assert neighbour_words(nearest, toolbox.lexical, "   ", 8) == []


class BuildingIndex:
    """A concept index still being built, as the chat sees it in its first minutes."""

    def search_dense(
        self, text: str, filters: SearchFilters | None = None, size: int = 10
    ) -> SearchResults:
        raise IndexBuilding("concept index: building, 2%")


def test_hints_fall_back_to_feedback_words_only_when_asked(toolbox: SearchToolbox) -> None:
    hints = expand_hints(toolbox.lexical, "logitek mouse", BuildingIndex(), fallback=True)
    assert hints.source == FEEDBACK and hints.words
    assert hints.text == "logitech mouse"
    with pytest.raises(IndexBuilding):
        expand_hints(toolbox.lexical, "logitek mouse", BuildingIndex())
    dense = expand_hints(toolbox.lexical, 'logitek mouse 8"', toolbox.concepts)
    assert dense.source == NEIGHBOURS
    assert dense.text == "logitech mouse 8 in."
    # the candidate words are chosen for the respelled request
    respelled = expand_hints(toolbox.lexical, "logitech mouse 8 in.", toolbox.concepts)
    assert dense.words == respelled.words


def test_the_chat_writer_sees_the_expand_prompt_on_the_embedded_index(
    toolbox: SearchToolbox,
) -> None:
    from agent.conversation.deps import AgentDeps
    from agent.conversation.writer import writer_request

    expand = writer_request(AgentDeps(toolbox), "logitek gaming mouse")
    assert expand == strategy_prompt("expand", "logitek gaming mouse", toolbox)
    rewrite = writer_request(AgentDeps(toolbox, writer_style="rewrite"), "gaming mouse")
    assert rewrite == build_prompt(SEARCH_PRODUCTS, "gaming mouse")
    # a lexical backend without term statistics (Elasticsearch) gets the rewrite prompt
    no_statistics = with_indexes(toolbox, object(), toolbox.concepts)
    assert writer_request(AgentDeps(no_statistics), "gaming mouse") == rewrite
    # while the concept index builds, the candidates are feedback words
    building = with_indexes(toolbox, toolbox.lexical, BuildingIndex())
    user = writer_request(AgentDeps(building), "gaming mouse").messages[-1]
    assert str(user["content"]).startswith("gaming mouse\nCandidate words: ")
