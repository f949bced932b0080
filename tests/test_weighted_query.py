"""Expansions (the shopper's words + weighted added words) on tantivy and the ES body, RM3 and
index-vocabulary typo correction, on a real tiny tantivy index and the stub ES transport."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.catalog_samples import sample_products
from tests.test_elasticsearch_contract import (  # noqa: F401 (pytest fixtures)
    DEFAULT_FIELDS,
    StubCluster,
    backend,
    cluster,
    walk,
)
from tools.errors import BadInput
from tools.search.elasticsearch_backend import ElasticsearchIndex
from tools.search.prf import FeedbackIndex, RelevanceModel, RM3Config, interpolate
from tools.search.request import SearchFilters, SearchRequest
from tools.search.spelling import (
    VocabularyIndex,
    corrections,
    edit_distance,
    max_edits,
    with_corrections,
)
from tools.search.tantivy_backend import TantivyIndex


@pytest.fixture()
def index(tmp_path: Path) -> TantivyIndex:
    built = TantivyIndex(tmp_path / "idx", create=True)
    built.index(sample_products())
    return built


def ranking(index: TantivyIndex, request: SearchRequest) -> list[tuple[str, float]]:
    return [(hit.product_id, hit.score) for hit in index.search(request).hits]


# -- the request ------------------------------------------------------------------------------


def test_expansions_round_trip_and_are_validated() -> None:
    request = SearchRequest("gaming mouse", expansions=(("wireless", 0.5), ("rgb", 0.2)))
    assert SearchRequest.from_dict(request.to_dict()) == request
    with pytest.raises(BadInput, match="weight"):
        SearchRequest("mouse", expansions=(("wireless", 1.5),))
    with pytest.raises(BadInput, match="weight"):
        SearchRequest("mouse", expansions=(("wireless", 0.0),))
    with pytest.raises(BadInput, match="non-empty"):
        SearchRequest("mouse", expansions=((" ", 0.5),))


# -- tantivy ----------------------------------------------------------------------------------


def test_no_additions_is_the_raw_search_exactly(index: TantivyIndex) -> None:
    raw = SearchRequest("gaming mouse", size=10)
    assert ranking(index, replace(raw, expansions=())) == ranking(index, raw)
    # an added word no product holds changes no score at all
    absent = replace(raw, expansions=(("zyxwvut", 1.0),))
    assert ranking(index, absent) == ranking(index, raw)


def test_an_added_word_lifts_products_that_hold_it_and_keeps_the_shoppers_matches(
    index: TantivyIndex,
) -> None:
    raw = SearchRequest("gaming mouse", size=10)
    plain = [pid for pid, _ in ranking(index, raw)]
    assert plain.index("m1") < plain.index("m3")  # "gaming" is not in the MX Master
    expanded = [pid for pid, _ in ranking(index, replace(raw, expansions=(("wireless", 1.0),)))]
    assert expanded[0] == "m3"  # mouse + wireless now beats mouse + gaming (title boost)
    assert set(plain) <= set(expanded)  # nothing the shopper's words found is lost
    assert "h1" in expanded and "h1" not in plain  # wireless headphones are now matched


def test_the_weight_scales_the_added_word(index: TantivyIndex) -> None:
    base = SearchRequest("wireless", size=10)
    scores = {}
    for weight in (0.1, 0.5, 1.0):
        hits = dict(ranking(index, replace(base, expansions=(("bluetooth", weight),))))
        scores[weight] = hits["h1"] - hits["m3"]  # h1 holds bluetooth, m3 does not
    assert scores[0.1] < scores[0.5] < scores[1.0]
    # a product matched only by the added word scores weight x its score alone
    alone = dict(ranking(index, SearchRequest("bluetooth", size=10)))
    half = dict(ranking(index, replace(base, expansions=(("bluetooth", 0.5),))))
    assert half["s1"] == pytest.approx(0.5 * alone["s1"], rel=1e-5)


def test_filters_still_apply_and_query_syntax_in_added_words_is_text(index: TantivyIndex) -> None:
    request = SearchRequest(
        "mouse",
        filters=SearchFilters(brands=("Logitech",)),
        expansions=(("title:razer OR *", 1.0),),
    )
    assert {pid for pid, _ in ranking(index, request)} == {"m1", "m3"}


# -- Elasticsearch: the same query on the wire -------------------------------------------------


def test_es_without_additions_sends_the_plain_body(
    backend: ElasticsearchIndex,  # noqa: F811
    cluster: StubCluster,  # noqa: F811
) -> None:
    cluster.reply(200, "search_two_hits.json").reply(200, "search_two_hits.json")
    backend.search(SearchRequest("wireless mouse"))
    backend.search(SearchRequest("wireless mouse", expansions=()))
    first, second = cluster.requests
    assert first.json() == second.json()
    assert "multi_match" in first.json()["query"]["bool"]["must"][0]


def test_es_body_is_the_weighted_disjunction(
    backend: ElasticsearchIndex,  # noqa: F811
    cluster: StubCluster,  # noqa: F811
) -> None:
    cluster.reply(200, "search_two_hits.json")
    request = SearchRequest(
        "gaming mouse",
        boosts={"title": 3.0, "description": 1.0},
        expansions=(("wireless", 0.5), ("rgb", 0.25)),
        filters=SearchFilters(max_price=None, brands=("Logitech",)),
    )
    backend.search(request)

    def field_clause(field: str, boost: float) -> dict[str, object]:
        return {
            "bool": {
                "should": [
                    {"match": {field: {"query": "gaming mouse", "operator": "or"}}},
                    {"match": {field: {"query": "wireless", "boost": 0.5}}},
                    {"match": {field: {"query": "rgb", "boost": 0.25}}},
                ],
                "boost": boost,
            }
        }

    assert cluster.requests[0].json()["query"] == {
        "bool": {
            "must": [
                {
                    "dis_max": {
                        "queries": [field_clause("title", 3.0), field_clause("description", 1.0)],
                        "tie_breaker": 0.3,
                    }
                }
            ],
            "filter": [{"terms": {"brand.keyword": ["logitech"]}}],
        }
    }


def test_es_added_words_never_become_query_syntax(
    backend: ElasticsearchIndex,  # noqa: F811
    cluster: StubCluster,  # noqa: F811
) -> None:
    cluster.reply(200, "search_no_hits.json")
    malicious = "title:foo OR *:*"
    backend.search(SearchRequest("mouse", expansions=((malicious, 0.5),), fuzzy=True))
    body = cluster.requests[0].json()
    leaves = walk(body)
    keys = {key for path, key in leaves if path and path[-1] == key}
    assert not keys & {"query_string", "simple_query_string", "script", "regexp", "wildcard"}
    where = {path[-1] for path, value in leaves if value == malicious}
    assert where == {"query"}
    fields = {path[-2] for path, value in leaves if value == malicious}
    assert fields == {f.split("^")[0] for f in DEFAULT_FIELDS}
    own = [v for p, v in leaves if p and p[-1] == "fuzziness" and v != "fuzziness"]
    assert own == ["AUTO"] * len(DEFAULT_FIELDS)  # fuzziness on the shopper's words only


# -- RM3 --------------------------------------------------------------------------------------


def test_rm3_feedback_terms_come_from_the_top_products(index: TantivyIndex) -> None:
    assert isinstance(index, FeedbackIndex)
    model = RelevanceModel(index, RM3Config(fb_docs=2, fb_terms=5, max_df_ratio=0.5))
    request = SearchRequest("gaming mouse")
    top = index.search(replace(request, size=2))
    feedback_text = " ".join(
        f"{h.product.title} {h.product.brand} {h.product.category} {h.product.description}"
        for h in top.hits
    )
    terms = model.feedback_terms(request)
    assert 0 < len(terms) <= 5
    assert sum(t.weight for t in terms) == pytest.approx(1.0)
    assert [t.weight for t in terms] == sorted((t.weight for t in terms), reverse=True)
    feedback_stems = set(index.terms(feedback_text))
    for term in terms:
        assert term.stem in feedback_stems
        assert term.stem not in {"game", "mous"}  # the request's own terms are not added
        assert index.terms(term.word) == [term.stem]  # the word analyses back to the stem


def test_rm3_drops_terms_too_common_in_the_catalog(index: TantivyIndex) -> None:
    strict = RelevanceModel(index, RM3Config(fb_docs=3, max_df_ratio=1 / 8))
    common = {"logitech", "wire"}  # each in 2+ of the 8 products
    assert not common & {t.stem for t in strict.feedback_terms(SearchRequest("gaming mouse"))}


def test_rm3_interpolation_keeps_the_shoppers_terms_at_weight_one(index: TantivyIndex) -> None:
    config = RM3Config(fb_docs=3, fb_terms=4, original_weight=0.8, max_df_ratio=0.5)
    model = RelevanceModel(index, config)
    request = SearchRequest("gaming mouse")
    terms = model.feedback_terms(request)
    expansions = interpolate(request, terms, index, config)
    # lambda/n for each of n=2 own terms, (1-lambda)*RM(t) for feedback; rescaled by n/lambda
    assert [w for _, w in expansions] == [
        pytest.approx(min(1.0, (1 - 0.8) / 0.8 * 2 * t.weight), abs=1e-6) for t in terms
    ]
    expanded = model.expand(request)
    assert expanded.text == request.text and expanded.expansions == expansions


def test_rm3_on_nothing_found_adds_nothing(index: TantivyIndex) -> None:
    model = RelevanceModel(index)
    request = SearchRequest("zyxwvut")
    assert model.expand(request) == request


# -- typo correction --------------------------------------------------------------------------


def test_edit_distance_counts_a_transposition_once() -> None:
    assert edit_distance("mouse", "mouse", 2) == 0
    assert edit_distance("mosue", "mouse", 2) == 1
    assert edit_distance("logitek", "logitech", 2) == 2
    assert edit_distance("keyboard", "mouse", 2) == 3  # above the limit
    assert [max_edits(w) for w in ("tv", "mous", "wireles")] == [0, 1, 2]


def test_misspelled_words_are_corrected_from_the_index_vocabulary(index: TantivyIndex) -> None:
    assert isinstance(index, VocabularyIndex)
    assert corrections(index, "logitek wireles mouse") == [
        ("logitek", "logitech"),
        ("wireles", "wireless"),
    ]
    assert corrections(index, "wireless mouse") == []  # real words are left alone
    fixed = with_corrections(index, SearchRequest("logitek mouse"))
    assert fixed.text == "logitek mouse"  # the shopper's words stay
    assert fixed.expansions == (("logitech", 1.0),)
    assert {pid for pid, _ in ranking(index, fixed)[:2]} == {"m1", "m3"}
    plain = SearchRequest("headphones")
    assert with_corrections(index, plain) is plain
