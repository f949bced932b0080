"""The title match every tool-path search gets (``tools.search.title_match``): which words and
pairs it reads, how it ranks on a real tantivy index, the same clauses on the stub
Elasticsearch transport, and an index from before the title kept word positions."""

from __future__ import annotations

from pathlib import Path

import pytest
import tantivy

from agent.protocol.tool_schemas import SEARCH_PRODUCTS
from agent.protocol.tool_search import plan_tool_search
from tests.test_elasticsearch_contract import (  # noqa: F401 (pytest fixtures)
    StubCluster,
    backend,
    cluster,
    walk,
)
from tools.catalog.product import Product
from tools.search.backend import IndexOutdated
from tools.search.elasticsearch_backend import ElasticsearchIndex
from tools.search.request import SearchFilters, SearchRequest
from tools.search.tantivy_backend import TantivyIndex
from tools.search.tantivy_schema import ANALYZER, TEXT_FIELDS
from tools.search.title_match import ALL_WORDS_BOOST, PHRASE_BOOST, plan_title_match

#: ``fan`` names the product in its title; ``spread`` has the words, but apart and out of order;
#: ``described`` holds "outdoor" only in its description.
PRODUCTS = [
    Product(id="fan", title="Hunter outdoor ceiling fan, 52 in, black", description="A fan."),
    Product(
        id="spread",
        title="Fan, outdoor rated, for a ceiling, with a light kit",
        description="Fan for outdoor use.",
    ),
    Product(
        id="described",
        title="Ceiling fan 42 in",
        description="Outdoor patio ceiling fan, outdoor rated for the outdoor porch.",
    ),
    Product(id="lamp", title="Outdoor wall lamp", description="A lamp for the porch."),
]


@pytest.fixture()
def index(tmp_path: Path) -> TantivyIndex:
    built = TantivyIndex(tmp_path / "idx", create=True)
    built.index(PRODUCTS)
    return built


def scores(index: TantivyIndex, request: SearchRequest) -> dict[str, float]:
    return {hit.product_id: hit.score for hit in index.search(request).hits}


# -- what is matched --------------------------------------------------------------------------


def test_words_terms_and_adjacent_pairs_of_a_request() -> None:
    match = plan_title_match("Outdoor Ceiling fans")
    assert match is not None
    assert match.words == ("outdoor", "ceiling", "fans")
    assert match.terms == ("outdoor", "ceil", "fan")
    assert match.pairs == (
        (("outdoor", "ceiling"), ("outdoor", "ceil")),
        (("ceiling", "fans"), ("ceil", "fan")),
    )


def test_a_stopword_breaks_a_pair_and_repeats_count_once() -> None:
    match = plan_title_match("bar of soap soap")
    assert match is not None
    assert match.terms == ("bar", "soap")
    assert match.pairs == ()  # "bar of" and "of soap" hold a stopword; "soap soap" is one term


def test_fewer_than_two_terms_ask_for_nothing() -> None:
    for text in ("fan", "the fan", "fans fan", "", "(((", "of the"):
        assert plan_title_match(text) is None, text


def test_query_syntax_is_only_words() -> None:
    match = plan_title_match('title:fan OR "outdoor*"')
    assert match is not None
    assert match.words == ("title", "fan", "outdoor")  # "or" is a stopword, like "and"


# -- tantivy ----------------------------------------------------------------------------------


def test_the_titled_product_rises_and_nothing_new_matches(index: TantivyIndex) -> None:
    raw = scores(index, SearchRequest("outdoor ceiling fan"))
    titled = scores(index, SearchRequest("outdoor ceiling fan", title_match=True))
    assert max(raw, key=raw.__getitem__) != "fan"  # BM25 counts the words anywhere
    assert max(titled, key=titled.__getitem__) == "fan"
    assert set(titled) == set(raw)  # should-clauses lift, they never match on their own
    assert titled["lamp"] == pytest.approx(raw["lamp"])  # not every word: no bonus
    for product in ("fan", "spread"):
        assert titled[product] > raw[product]  # every word is in each of these titles
    assert titled["described"] - raw["described"] > 0  # only the pair "ceiling fan"
    assert titled["fan"] - raw["fan"] > titled["spread"] - raw["spread"]  # and in order


def test_the_bonus_is_the_weighted_sum_of_its_two_clauses(index: TantivyIndex) -> None:
    text = "outdoor ceiling fan"
    every_word = scores(
        index, SearchRequest(text, boosts={"title": 1.0, "brand": 0.0, "category": 0.0,
                                           "description": 0.0, "attributes": 0.0})
    )  # fmt: skip
    raw = scores(index, SearchRequest(text))
    titled = scores(index, SearchRequest(text, title_match=True))
    # "spread" holds every word but no pair: its bonus is the every-word clause alone
    assert titled["spread"] - raw["spread"] == pytest.approx(
        ALL_WORDS_BOOST * every_word["spread"], rel=1e-5
    )
    phrase_part = titled["fan"] - raw["fan"] - ALL_WORDS_BOOST * every_word["fan"]
    assert phrase_part > 0
    assert PHRASE_BOOST < 1  # the pairs weigh less than the words themselves


def test_filters_still_apply_and_one_word_is_the_plain_search(index: TantivyIndex) -> None:
    only_hunter = SearchFilters(brands=("Hunter",))
    assert scores(index, SearchRequest("outdoor fan", only_hunter, title_match=True)) == {}
    plain = [(h.product_id, h.score) for h in index.search(SearchRequest("lamp")).hits]
    titled = index.search(SearchRequest("lamp", title_match=True)).hits
    assert [(h.product_id, h.score) for h in titled] == plain


def test_the_tool_path_asks_for_it_and_the_request_round_trips() -> None:
    search = plan_tool_search(SEARCH_PRODUCTS, {"query": "outdoor ceiling fan"}, size=10)
    assert search.request.title_match
    assert SearchRequest.from_dict(search.request.to_dict()) == search.request
    assert not SearchRequest.from_dict({"text": "fan"}).title_match


# -- Elasticsearch: the same clauses on the wire ------------------------------------------------


def test_stub_body_adds_every_word_and_pair_clauses(
    backend: ElasticsearchIndex,  # noqa: F811
    cluster: StubCluster,  # noqa: F811
) -> None:
    cluster.reply(200, "search_two_hits.json").reply(200, "search_two_hits.json")
    backend.search(SearchRequest("Outdoor ceiling fans", title_match=True))
    backend.search(SearchRequest("Outdoor ceiling fans"))
    titled, plain = (request.json()["query"]["bool"] for request in cluster.requests)
    assert "should" not in plain
    assert titled["must"] == plain["must"]
    assert titled["should"] == [
        {"match": {"title": {"query": "outdoor ceiling fans", "operator": "and", "boost": 1.0}}},
        {
            "bool": {
                "should": [
                    {"match_phrase": {"title": "outdoor ceiling"}},
                    {"match_phrase": {"title": "ceiling fans"}},
                ],
                "boost": 0.5,
            }
        },
    ]


def test_stub_title_words_never_become_query_syntax(
    backend: ElasticsearchIndex,  # noqa: F811
    cluster: StubCluster,  # noqa: F811
) -> None:
    cluster.reply(200, "search_no_hits.json")
    backend.search(SearchRequest('title:fan OR "outdoor*" AND *:*', title_match=True))
    leaves = walk(cluster.requests[0].json())
    keys = {key for path, key in leaves if path and path[-1] == key}
    assert not keys & {"query_string", "simple_query_string", "script", "regexp", "wildcard"}


# -- an index from an older shopagent -----------------------------------------------------------


def _old_schema_index(path: Path) -> None:
    """An index as shopagent wrote it before the title kept positions (title: freq only)."""
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    for field in TEXT_FIELDS.values():
        builder.add_text_field(field, tokenizer_name=ANALYZER, index_option="freq")
    path.mkdir(parents=True)
    tantivy.Index(builder.build(), path=str(path))


def test_an_old_index_asks_for_a_rebuild_and_a_build_replaces_it(tmp_path: Path) -> None:
    path = tmp_path / "old"
    _old_schema_index(path)
    with pytest.raises(IndexOutdated, match=r"older shopagent; rebuild it with `shopagent index "
                       r"--dataset homedepot`"):  # fmt: skip
        TantivyIndex(path, dataset="homedepot")
    rebuilt = TantivyIndex(path, create=True, dataset="homedepot")
    rebuilt.index(PRODUCTS)
    reopened = TantivyIndex(path, dataset="homedepot")
    assert reopened.search(SearchRequest("outdoor ceiling fan", title_match=True)).ids[0] == "fan"
