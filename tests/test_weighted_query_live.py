"""Expansions on a real Elasticsearch cluster: the same contract the tantivy tests pin.

Skipped unless SHOPAGENT_ES_URL is set (``docker compose up -d elasticsearch``); works in an
index of its own and removes it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest

from tests.catalog_samples import sample_products
from tools.search.elasticsearch_backend import ElasticsearchIndex
from tools.search.es_mapping import template_name_for
from tools.search.request import SearchRequest
from tools.search.tantivy_backend import TantivyIndex

ES_URL = os.environ.get("SHOPAGENT_ES_URL", "")

pytestmark = [
    pytest.mark.es,
    pytest.mark.skipif(not ES_URL, reason="set SHOPAGENT_ES_URL to run against Elasticsearch"),
]


@pytest.fixture(scope="module")
def es() -> Iterator[ElasticsearchIndex]:
    backend = ElasticsearchIndex(ES_URL, dataset=f"test-{uuid.uuid4().hex[:10]}")
    try:
        backend.index(sample_products())
        yield backend
    finally:
        backend.client.indices.delete(index=backend.index_name, ignore_unavailable=True)
        backend.client.options(ignore_status=404).indices.delete_index_template(
            name=template_name_for(backend.index_name)
        )
        backend.close()


def scored(backend: ElasticsearchIndex | TantivyIndex, request: SearchRequest) -> dict[str, float]:
    return {hit.product_id: hit.score for hit in backend.search(request).hits}


def test_an_absent_added_word_changes_no_score(es: ElasticsearchIndex) -> None:
    raw = SearchRequest("gaming mouse", size=10)
    absent = replace(raw, expansions=(("zyxwvut", 1.0),))
    assert scored(es, absent) == pytest.approx(scored(es, raw), rel=1e-6)


def test_an_added_word_lifts_what_holds_it_as_on_tantivy(es: ElasticsearchIndex) -> None:
    tantivy = TantivyIndex(None, create=True)
    tantivy.index(sample_products())
    request = SearchRequest("mouse", size=10, expansions=(("wireless", 0.5),))
    on_es, on_tantivy = es.search(request).ids, tantivy.search(request).ids
    assert on_es[0] == on_tantivy[0] == "m3"
    assert set(on_es) == set(on_tantivy)  # the same products match the same disjunction
    alone = scored(es, SearchRequest("wireless", size=10))
    half = scored(es, replace(request, text="keyboard"))
    assert half["h1"] == pytest.approx(0.5 * alone["h1"], rel=1e-4)


def test_the_title_match_ranks_as_on_tantivy() -> None:
    """The every-word and word-pair clauses lift the same product on both backends."""
    from tests.test_title_match import PRODUCTS

    es = ElasticsearchIndex(ES_URL, dataset=f"test-{uuid.uuid4().hex[:10]}")
    try:
        es.index(PRODUCTS)
        tantivy = TantivyIndex(None, create=True)
        tantivy.index(PRODUCTS)
        titled = SearchRequest("outdoor ceiling fan", size=10, title_match=True)
        assert es.search(titled).ids[0] == tantivy.search(titled).ids[0] == "fan"
        plain = replace(titled, title_match=False)
        assert set(es.search(titled).ids) == set(es.search(plain).ids)  # lifts, never matches
    finally:
        es.client.indices.delete(index=es.index_name, ignore_unavailable=True)
        es.client.options(ignore_status=404).indices.delete_index_template(
            name=template_name_for(es.index_name)
        )
        es.close()
