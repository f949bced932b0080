"""Product -> Chroma record, SearchFilters -> Chroma ``where``, title matching, URL parsing."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.catalog_samples import sample_products
from tools.catalog.product import Product
from tools.search.chroma_client import ChromaServer, parse_chroma_url
from tools.search.chroma_concepts import ConceptIndex, collection_name
from tools.search.chroma_records import (
    DESCRIPTION_CHARS,
    chroma_where,
    embedding_text,
    product_from_metadata,
    record_metadata,
)
from tools.search.direct_lookup import interleave, normalise_title, title_similarity
from tools.search.request import SearchFilters
from tools.settings.config import Settings


def by_id(product_id: str) -> Product:
    return next(p for p in sample_products() if p.id == product_id)


def test_embedding_text_has_title_brand_category_and_a_cut_description() -> None:
    product = Product(
        id="x",
        title="MX Master 3 wireless mouse",
        brand="Logitech",
        category_path=("Computers", "Mice"),
        description="word " * 500,
    )
    text = embedding_text(product)
    assert text.startswith("MX Master 3 wireless mouse. Logitech. Computers > Mice. word")
    assert len(text) <= len("MX Master 3 wireless mouse. Logitech. Computers > Mice. ") + (
        DESCRIPTION_CHARS
    )
    assert not text.endswith(" ")


def test_embedding_text_does_not_repeat_a_brand_the_title_names() -> None:
    assert embedding_text(by_id("m1")).count("Logitech") == 1


def test_metadata_is_normalised_like_matches_and_round_trips_the_product() -> None:
    product = by_id("m1")
    metadata = record_metadata(product)
    assert metadata["brand_lc"] == "logitech"
    assert metadata["categories_lc"] == ["computers", "mice"]
    assert metadata["price"] == pytest.approx(29.99)
    assert "max_dpi=8000" in metadata["attr_tokens"]
    assert "rgb=yes" in metadata["attr_tokens"]
    assert product_from_metadata(metadata) == product
    assert product_from_metadata(metadata).price == Decimal("29.99")


def test_absent_values_are_written_as_none_so_upserts_clear_stale_keys() -> None:
    metadata = record_metadata(by_id("n1"))
    assert set(metadata) == {"brand_lc", "categories_lc", "price", "attr_tokens", "product"}
    assert metadata["categories_lc"] is None
    assert metadata["price"] is None
    assert metadata["attr_tokens"] is None
    assert json.loads(metadata["product"])["id"] == "n1"


def test_where_for_no_filters_is_none() -> None:
    assert chroma_where(SearchFilters()) is None


def test_where_for_one_filter_is_the_bare_clause() -> None:
    where = chroma_where(SearchFilters(brands=("Logitech", "RAZER", "logitech")))
    assert where == {"brand_lc": {"$in": ["logitech", "razer"]}}


def test_where_combines_every_filter_with_and() -> None:
    filters = SearchFilters(
        brands=("Sony",),
        category="Headphones",
        min_price=Decimal("10"),
        max_price=Decimal("300.50"),
        attributes={"Max DPI": "8000", "RGB": "true"},
    )
    assert chroma_where(filters) == {
        "$and": [
            {"brand_lc": {"$in": ["sony"]}},
            {"categories_lc": {"$contains": "headphones"}},
            {"price": {"$gte": 10.0}},
            {"price": {"$lte": 300.5}},
            {"attr_tokens": {"$contains": "max_dpi=8000"}},
            {"attr_tokens": {"$contains": "rgb=yes"}},
        ]
    }


def test_collection_names_are_chroma_legal() -> None:
    assert collection_name("chorus") == "products-chorus"
    assert collection_name(" home depot/2016 ") == "products-home-depot-2016"
    with pytest.raises(ValueError, match="bad dataset name"):
        collection_name("///")


def test_titles_normalise_and_compare_ignoring_case_punctuation_and_order() -> None:
    assert normalise_title("  Sony WH-1000XM4, (Black)") == "sony wh 1000xm4 black"
    assert title_similarity("Sony WH-1000XM4", "sony wh 1000xm4") == 1.0
    assert title_similarity("wireless mouse Logitech", "Logitech wireless mouse") > 0.95
    assert title_similarity("", "anything") == 0.0


def test_title_similarity_prefers_the_right_model_number() -> None:
    imagined = "Logitech MX Master 3 wireless mouse"
    right = "Logitech MX Master 3 Advanced Wireless Mouse Graphite"
    wrong = "Logitech M185 Wireless Mouse Grey"
    assert title_similarity(imagined, right) > title_similarity(imagined, wrong)


def test_interleave_gives_each_title_its_best_match_first_and_skips_repeats() -> None:
    a, b, c, d = (Product(id=i, title=i) for i in "abcd")
    merged = interleave([[(a, 0.9), (b, 0.5)], [(a, 0.8), (c, 0.7), (d, 0.1)]], size=10)
    assert [(p.id, s) for p, s in merged] == [("a", 0.9), ("b", 0.5), ("c", 0.7), ("d", 0.1)]
    assert [p.id for p, _ in interleave([[(a, 1.0), (b, 1.0)], [(c, 1.0)]], size=2)] == ["a", "c"]


def test_chroma_urls_parse_or_fail_in_one_line() -> None:
    assert parse_chroma_url("http://127.0.0.1:8123") == ChromaServer("127.0.0.1", 8123)
    assert parse_chroma_url("https://chroma.example/") == ChromaServer("chroma.example", 8000, True)
    for bad in ("localhost:8000", "ftp://x:1", "http://x:1/api", "http://x:notaport"):
        with pytest.raises(ValueError, match="bad Chroma URL"):
            parse_chroma_url(bad)


def test_from_settings_uses_the_server_when_a_url_is_set(tmp_path) -> None:  # type: ignore[no-untyped-def]
    on_disk = ConceptIndex.from_settings(Settings(home=tmp_path), "chorus")
    assert on_disk.path == tmp_path / "indexes" / "chorus" / "chroma"
    assert on_disk.server is None
    remote = ConceptIndex.from_settings(
        Settings(home=tmp_path, chroma_url="http://10.0.0.5:9000"), "chorus"
    )
    assert remote.server == ChromaServer("10.0.0.5", 9000)
    assert remote.path is None
