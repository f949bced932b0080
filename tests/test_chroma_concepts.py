"""The concept index on an embedded Chroma: 300 real Chorus products plus a small hand catalog."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import chromadb
import numpy as np
import pytest
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings
from chromadb.utils.embedding_functions import register_embedding_function

from tests.catalog_samples import sample_products
from tests.index_contract import assert_keeps_the_product_index_contract
from tools.catalog.chorus import iter_products
from tools.catalog.import_report import ImportReport
from tools.catalog.product import Product
from tools.search.backend import IndexMissing, SearchError
from tools.search.chroma_concepts import CONCEPT_DEPTH, ConceptIndex
from tools.search.fusion import reciprocal_rank_fusion
from tools.search.request import SearchFilters, SearchRequest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CHORUS_COUNT = 300


@pytest.fixture(scope="module")
def chorus_products(shared_data: Path) -> list[Product]:
    first_file = shared_data / "chorus-electronics" / "1.json.zip"
    return list(itertools.islice(iter_products(first_file, ImportReport()), CHORUS_COUNT))


@pytest.fixture(scope="module")
def chorus_index(
    chorus_products: list[Product], tmp_path_factory: pytest.TempPathFactory
) -> ConceptIndex:
    """Built once per module: embedding 300 products is the slow part."""
    index = ConceptIndex("chorus", path=tmp_path_factory.mktemp("chorus") / "chroma")
    assert index.index(chorus_products) == CHORUS_COUNT
    return index


@pytest.fixture()
def samples_index(tmp_path: Path) -> Iterator[ConceptIndex]:
    """The eight hand-written products, rebuilt per test because these tests change it."""
    index = ConceptIndex("samples", path=tmp_path / "chroma")
    index.index(sample_products())
    yield index


def test_keeps_the_product_index_contract(tmp_path: Path) -> None:
    products = sample_products()
    fresh = ConceptIndex("contract", path=tmp_path / "chroma")
    assert fresh.name == "concepts"
    assert_keeps_the_product_index_contract(fresh, products, products[0].title)


def test_every_product_comes_back_exactly(
    chorus_index: ConceptIndex, chorus_products: list[Product]
) -> None:
    assert chorus_index.count() == CHORUS_COUNT
    for product in chorus_products[:40]:
        assert chorus_index.get(product.id) == product
    assert chorus_index.get("no-such-id") is None


def test_concepts_are_fused_per_concept_rankings(chorus_index: ConceptIndex) -> None:
    concepts = ["toner cartridge", "black ink", "Toner Cartridge"]  # the repeat counts once
    fused = chorus_index.search_concepts(concepts, size=8)

    per_concept = [
        chorus_index.search_dense(concept, size=CONCEPT_DEPTH) for concept in concepts[:2]
    ]
    expected = reciprocal_rank_fusion(per_concept, k=60, size=8)
    assert fused.ids == expected.ids
    assert [hit.score for hit in fused.hits] == pytest.approx([h.score for h in expected.hits])
    assert [hit.rank for hit in fused.hits] == list(range(1, 9))
    assert fused.backend == "concepts"
    assert fused.detail["concepts"] == ["toner cartridge", "black ink"]
    printing = sum(
        any(word in hit.product.title.lower() for word in ("toner", "ink", "cartridge"))
        for hit in fused.hits
    )
    assert printing >= 6, [hit.product.title for hit in fused.hits]


def test_dense_search_ranks_by_cosine_similarity(chorus_index: ConceptIndex) -> None:
    found = chorus_index.search_dense("usb mouse", size=5)
    scores = [hit.score for hit in found.hits]
    assert scores == sorted(scores, reverse=True)
    assert all(-1.0 <= score <= 1.0 for score in scores)
    assert "mouse" in found.hits[0].product.title.lower()
    assert found.backend == "dense"


def test_search_request_is_a_dense_search(chorus_index: ConceptIndex) -> None:
    filters = SearchFilters(max_price=Decimal("40"))
    request = SearchRequest(text="cable adapter", filters=filters, size=7)
    assert (
        chorus_index.search(request).ids
        == chorus_index.search_dense("cable adapter", filters, 7).ids
    )


def _all_matching(chorus_products: list[Product], filters: SearchFilters) -> set[str]:
    return {p.id for p in chorus_products if filters.matches(p)}


def test_brand_filter_is_case_insensitive_and_complete(
    chorus_index: ConceptIndex, chorus_products: list[Product]
) -> None:
    filters = SearchFilters(brands=("hp", "EPSON"))
    found = chorus_index.search_dense("printer", filters, size=CHORUS_COUNT)
    assert {hit.product.brand for hit in found.hits} == {"HP", "Epson"}
    assert set(found.ids) == _all_matching(chorus_products, filters)


def test_price_range_is_inclusive_exact_and_complete(
    chorus_index: ConceptIndex, chorus_products: list[Product]
) -> None:
    prices = sorted({p.price for p in chorus_products if p.price is not None})
    low, high = prices[len(prices) // 4], prices[len(prices) // 2]
    filters = SearchFilters(min_price=low, max_price=high)
    found = chorus_index.search_dense("accessory", filters, size=CHORUS_COUNT)
    assert set(found.ids) == _all_matching(chorus_products, filters)
    assert {low, high} <= {hit.product.price for hit in found.hits}  # both edges included
    assert all(low <= hit.product.price <= high for hit in found.hits)  # type: ignore[operator]


def test_filters_hold_for_concepts_and_title_lookup_too(chorus_index: ConceptIndex) -> None:
    filters = SearchFilters(brands=("HP",), max_price=Decimal("60"))
    concept_hits = chorus_index.search_concepts(["laser toner", "photo paper"], filters, 20)
    title_hits = chorus_index.lookup_titles(["Canon PIXMA printer", "HP 301 ink"], 20, filters)
    assert concept_hits.hits and title_hits.hits
    assert all(filters.matches(hit.product) for hit in [*concept_hits.hits, *title_hits.hits])


def test_imagined_titles_find_the_real_products(
    chorus_index: ConceptIndex, chorus_products: list[Product]
) -> None:
    targets = [chorus_products[i] for i in (3, 50, 120, 199, 280)]
    # what an LLM might write: lower case, last word dropped, words swapped
    imagined = []
    for product in targets:
        words = product.title.lower().split()[:-1]
        words[0], words[1] = words[1], words[0]
        imagined.append(" ".join(words))

    found = chorus_index.lookup_titles(imagined, size=5)

    assert found.backend == "direct"
    assert found.ids == [p.id for p in targets]
    assert all(0.0 < hit.score <= 1.0 for hit in found.hits)
    best = found.detail["best_matches"]
    assert [best[title]["id"] for title in imagined] == found.ids


def test_empty_text_lists_products_that_pass_the_filters(
    chorus_index: ConceptIndex, chorus_products: list[Product]
) -> None:
    filters = SearchFilters(brands=("Philips",))
    found = chorus_index.search_dense("  ", filters, size=5)
    assert len(found) == min(5, len(_all_matching(chorus_products, filters)))
    assert all(hit.product.brand == "Philips" and hit.score == 0.0 for hit in found.hits)


def test_bad_input_is_a_one_line_error(chorus_index: ConceptIndex) -> None:
    with pytest.raises(ValueError, match="at least one non-empty concept"):
        chorus_index.search_concepts(["", "  "])
    with pytest.raises(ValueError, match="at least one non-empty title"):
        chorus_index.lookup_titles([])
    with pytest.raises(ValueError, match="size must be between"):
        chorus_index.search_dense("mouse", size=0)
    with pytest.raises(ValueError, match="exactly one of path"):
        ConceptIndex("chorus")


def test_reopened_in_a_new_process_without_passing_the_embedding_function(
    chorus_index: ConceptIndex, tmp_path: Path
) -> None:
    """Chroma rebuilds the registered embedding function from the persisted config."""
    expected = chorus_index.search_dense("wireless headset", size=5).ids
    script = textwrap.dedent(
        f"""
        import json
        from pathlib import Path

        import chromadb
        import tools.search.embeddings  # registers "shopagent-minilm" with Chroma
        from tools.search.chroma_concepts import ConceptIndex

        client = chromadb.PersistentClient(path={str(chorus_index.path)!r})
        collection = client.get_collection({chorus_index.collection_name!r})
        found = collection.query(query_texts=["wireless headset"], n_results=5)
        index = ConceptIndex("chorus", path=Path({str(chorus_index.path)!r}))
        print(json.dumps({{
            "bare": found["ids"][0],
            "index": index.search_dense("wireless headset", size=5).ids,
            "ef": collection.configuration["embedding_function"].name(),
        }}))
        """
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        # Any model download would fail here: no offline flag, a dead hub, an empty cache.
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "HF_HOME": str(tmp_path / "hf-home"),
    }
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("TRANSFORMERS_OFFLINE", None)
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    reopened = json.loads(done.stdout.strip().splitlines()[-1])
    assert reopened["ef"] == "shopagent-minilm"
    assert reopened["bare"] == expected
    assert reopened["index"] == expected


# -- in-place changes, on the small hand catalog -----------------------------------------------


def test_category_and_attribute_filters(samples_index: ConceptIndex) -> None:
    mice = SearchFilters(category="mice")
    assert set(samples_index.search_dense("mouse", mice, 10).ids) == {"m1", "m2", "m3"}
    wireless_mice = SearchFilters(category="Mice", attributes={"Connectivity": "wireless"})
    assert samples_index.search_dense("mouse", wireless_mice, 10).ids == ["m3"]
    dpi = SearchFilters(attributes={"max_dpi": "8000", "RGB": "yes"})
    assert samples_index.search_concepts(["gaming", "mouse"], dpi, 10).ids == ["m1"]


def test_upsert_replaces_a_product_and_its_filter_fields(samples_index: ConceptIndex) -> None:
    old = next(p for p in sample_products() if p.id == "m1")
    changed = replace(old, brand="Acme", price=Decimal("5.00"), category_path=(), attributes={})
    new = Product(id="m9", title="Acme trackball mouse", brand="Acme", price=Decimal("19.00"))

    assert samples_index.upsert([changed, new]) == 2

    assert samples_index.count() == 9
    assert samples_index.get("m1") == changed
    assert samples_index.get("m9") == new
    # stale metadata from the old record must not survive the upsert
    assert "m1" not in samples_index.search_dense("mouse", SearchFilters(category="Mice"), 10).ids
    assert (
        "m1"
        not in samples_index.search_dense("mouse", SearchFilters(attributes={"rgb": "yes"}), 10).ids
    )
    acme = samples_index.search_dense("mouse", SearchFilters(brands=("acme",)), 10)
    assert set(acme.ids) == {"m1", "m9"}


def test_a_search_right_after_a_delete_never_returns_the_product(
    samples_index: ConceptIndex,
) -> None:
    assert "m3" in samples_index.search_dense("wireless mouse", size=3).ids

    assert samples_index.delete(["m3", "m3", "not-there"]) == 1

    assert samples_index.get("m3") is None
    assert samples_index.count() == 7
    assert "m3" not in samples_index.search_dense("wireless mouse", size=10).ids
    assert "m3" not in samples_index.search_concepts(["wireless", "mouse"], size=10).ids
    assert "m3" not in samples_index.lookup_titles(["Logitech MX Master 3"], size=10).ids


def test_index_replaces_everything_and_reports_progress(samples_index: ConceptIndex) -> None:
    products = sample_products()
    progress: list[int] = []
    duplicate = replace(products[0], title="Logitech G203 mouse, second record")

    assert samples_index.index([*products[:3], duplicate], progress=progress.append) == 3

    assert samples_index.count() == 3
    assert sum(progress) == 3
    assert samples_index.get(products[0].id) == duplicate  # the last record of an id wins
    assert samples_index.get("h1") is None


def test_a_missing_index_names_the_command_that_builds_it(tmp_path: Path) -> None:
    absent = ConceptIndex("chorus", path=tmp_path / "nothing-here")
    with pytest.raises(IndexMissing, match="shopagent index --dataset chorus"):
        absent.search_dense("mouse")
    assert not (tmp_path / "nothing-here").exists()  # a read never creates an index

    other = ConceptIndex("other", path=tmp_path / "chroma")
    other.index(sample_products()[:1])
    empty = ConceptIndex("homedepot", path=tmp_path / "chroma")
    with pytest.raises(IndexMissing, match="shopagent index --dataset homedepot"):
        empty.count()
    with pytest.raises(IndexMissing):
        empty.delete(["m1"])


@register_embedding_function
class FakeForeignEmbedding(EmbeddingFunction[Documents]):
    """Stands in for a collection someone built with another model."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:
        return [np.ones(3, dtype=np.float32) for _ in input]

    @staticmethod
    def name() -> str:
        return "fake-foreign"

    def get_config(self) -> dict[str, object]:
        return {}

    @staticmethod
    def build_from_config(config: dict[str, object]) -> FakeForeignEmbedding:
        return FakeForeignEmbedding()


def test_a_collection_from_a_fake_foreign_model_is_refused_in_one_line(tmp_path: Path) -> None:
    client = chromadb.PersistentClient(path=str(tmp_path / "chroma"))
    client.create_collection("products-foreign", embedding_function=FakeForeignEmbedding())  # type: ignore[arg-type]
    index = ConceptIndex("foreign", path=tmp_path / "chroma")
    with pytest.raises(SearchError, match="built with another embedding function") as raised:
        index.search_dense("mouse")
    assert "shopagent index --dataset foreign" in str(raised.value)
    assert "\n" not in str(raised.value)
