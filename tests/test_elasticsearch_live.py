"""The Elasticsearch backend against a real cluster (``docker compose up -d elasticsearch``).

Skipped unless SHOPAGENT_ES_URL is set. Every test works in indexes of its own
(``shopagent-test-<random>``) and removes them, so it is safe against a dev cluster.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from tests.catalog_samples import sample_products
from tools.catalog.chorus import iter_products
from tools.catalog.import_report import ImportReport
from tools.catalog.product import Product
from tools.search.backend import IndexMissing
from tools.search.elasticsearch_backend import ElasticsearchIndex
from tools.search.es_mapping import ANALYZER, template_name_for
from tools.search.request import SearchFilters, SearchRequest

ES_URL = os.environ.get("SHOPAGENT_ES_URL", "")
CHORUS_PRODUCTS = 400

pytestmark = [
    pytest.mark.es,
    pytest.mark.skipif(not ES_URL, reason="set SHOPAGENT_ES_URL to run against Elasticsearch"),
]


def _scratch_backend() -> ElasticsearchIndex:
    return ElasticsearchIndex(ES_URL, dataset=f"test-{uuid.uuid4().hex[:10]}")


def _drop(backend: ElasticsearchIndex) -> None:
    backend.client.indices.delete(index=backend.index_name, ignore_unavailable=True)
    backend.client.options(ignore_status=404).indices.delete_index_template(
        name=template_name_for(backend.index_name)
    )
    backend.close()


@pytest.fixture(scope="module")
def catalog(shared_data: Path) -> list[Product]:
    """A few hundred real Chorus products plus the hand-written samples (they have categories)."""
    report = ImportReport()
    chorus = list(
        itertools.islice(iter_products(shared_data / "chorus-electronics", report), CHORUS_PRODUCTS)
    )
    assert len(chorus) == CHORUS_PRODUCTS, report.summary()
    return chorus + sample_products()


@pytest.fixture(scope="module")
def built(catalog: list[Product]) -> Iterator[ElasticsearchIndex]:
    backend = _scratch_backend()
    progress: list[int] = []
    try:
        assert backend.index(catalog, progress=progress.append) == len(catalog)
        assert sum(progress) == len(catalog)
        yield backend
    finally:
        _drop(backend)


@pytest.fixture()
def scratch() -> Iterator[ElasticsearchIndex]:
    backend = _scratch_backend()
    try:
        backend.index(sample_products())
        yield backend
    finally:
        _drop(backend)


def _all(backend: ElasticsearchIndex, text: str, filters: SearchFilters | None = None) -> set[str]:
    request = SearchRequest(text, filters=filters or SearchFilters(), size=1000)
    return set(backend.search(request).ids)


def test_counts_and_round_trips_products_exactly(
    built: ElasticsearchIndex, catalog: list[Product]
) -> None:
    assert built.count() == len(catalog)
    for product in (catalog[0], catalog[len(catalog) // 2], catalog[-1]):
        assert built.get(product.id) == product
    assert built.get("no-such-product") is None


def test_template_analyzer_stems_folds_and_drops_stopwords(built: ElasticsearchIndex) -> None:
    analysed = built.client.indices.analyze(
        index=built.index_name, analyzer=ANALYZER, text="The Café's Running Cartridges"
    )
    assert [token["token"] for token in analysed["tokens"]] == ["cafe", "run", "cartridg"]


def test_plural_query_finds_every_singular_title(
    built: ElasticsearchIndex, catalog: list[Product]
) -> None:
    expected = {p.id for p in catalog if "cartridge" in p.title.lower().split()}
    assert len(expected) >= 10

    found = _all(built, "cartridges")

    assert expected <= found


def test_top_hits_mention_the_query(built: ElasticsearchIndex) -> None:
    results = built.search(SearchRequest("toner", size=5))

    assert len(results) == 5
    assert results.total is not None and results.total >= 5
    for hit in results.hits:
        text = f"{hit.product.title} {hit.product.description}".lower()
        assert "toner" in text
    assert [hit.score for hit in results.hits] == sorted(
        (hit.score for hit in results.hits), reverse=True
    )


@pytest.mark.parametrize(
    "filters",
    [
        SearchFilters(brands=("hp", "EPSON")),
        SearchFilters(min_price=Decimal("10"), max_price=Decimal("49.95")),
        SearchFilters(max_price=Decimal("29.99")),
        SearchFilters(attributes={"Print technology": "laser printing"}),
        SearchFilters(attributes={"quantity_per_pack": "1"}),
        SearchFilters(attributes={"rgb": "true"}),
        SearchFilters(category="mice"),
        SearchFilters(brands=("Logitech",), category="Mice", max_price=Decimal("99.00")),
    ],
    ids=[
        "brands",
        "price-range",
        "max-price",
        "attr-text",
        "attr-number",
        "attr-bool",
        "category",
        "combined",
    ],
)
def test_filters_select_exactly_what_the_reference_selects(
    built: ElasticsearchIndex, catalog: list[Product], filters: SearchFilters
) -> None:
    expected = {p.id for p in catalog if filters.matches(p)}
    assert expected, "the filter should select something in this catalog"

    assert _all(built, "", filters) == expected


def test_filters_restrict_scored_text_queries(
    built: ElasticsearchIndex, catalog: list[Product]
) -> None:
    by_id = {p.id: p for p in catalog}
    filters = SearchFilters(brands=("HP",), max_price=Decimal("100"))

    found = _all(built, "black toner cartridge", filters)

    assert found
    assert all(filters.matches(by_id[pid]) for pid in found)


def test_fuzzy_recovers_a_misspelled_brand(built: ElasticsearchIndex) -> None:
    assert _all(built, "logitek") == set()

    fuzzy = built.search(SearchRequest("logitek", fuzzy=True, size=20))

    assert fuzzy.hits
    assert all(hit.product.brand == "Logitech" for hit in fuzzy.hits[:2])


def test_upsert_replaces_in_place(scratch: ElasticsearchIndex) -> None:
    before = scratch.count()
    original = scratch.get("m1")
    assert original is not None
    renamed = replace(original, title="Logitech G203 zyxwvut edition", price=Decimal("19.99"))

    assert scratch.upsert([renamed]) == 1

    assert scratch.count() == before
    assert scratch.search(SearchRequest("zyxwvut")).ids == ["m1"]
    assert scratch.get("m1") == renamed
    cheap = SearchFilters(max_price=Decimal("19.99"))
    assert "m1" in _all(scratch, "", cheap)


def test_deleted_products_vanish_from_the_next_search(scratch: ElasticsearchIndex) -> None:
    before = scratch.count()
    assert "m3" in _all(scratch, "wireless mouse")

    assert scratch.delete(["m3", "never-existed"]) == 1

    assert "m3" not in _all(scratch, "wireless mouse")
    assert scratch.get("m3") is None
    assert scratch.count() == before - 1


def test_rebuild_replaces_the_whole_index(scratch: ElasticsearchIndex) -> None:
    only_two = sample_products()[:2]

    assert scratch.index(only_two) == 2

    assert scratch.count() == 2
    assert _all(scratch, "") == {p.id for p in only_two}


def test_missing_index_names_the_build_command() -> None:
    backend = _scratch_backend()
    try:
        with pytest.raises(IndexMissing, match="shopagent index --dataset test-"):
            backend.search(SearchRequest("mouse"))
        with pytest.raises(IndexMissing):
            backend.upsert(sample_products()[:1])
        assert not backend.client.indices.exists(index=backend.index_name)
    finally:
        _drop(backend)
