"""Measures as one token per quantity, the same on the product side and the request side, so
``1tb`` finds ``1000GB`` and ``50 inch`` finds ``127 cm (50")`` (``tools.search.measures``)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import tantivy

from tests.conftest import FIXTURES
from tools.catalog.product import Product
from tools.search.backend import IndexOutdated
from tools.search.measures import measure_boost, measure_tokens, measures_text
from tools.search.request import SearchRequest
from tools.search.tantivy_backend import TantivyIndex
from tools.search.tantivy_schema import ANALYZER, POSITION_FIELDS, TEXT_FIELDS

#: Real Chorus (Icecat) products: two 1000 GB drives written ``1000GB`` and ``1000 GB``, a 2TB
#: and a 500 GB one, and TVs of 50", 55" and 43" written ``127 cm (50")``.
CHORUS = FIXTURES / "measures" / "chorus.jsonl"
THOUSAND_GB = {"1683224", "79129887"}
FIFTY_INCH = "4699665"


@pytest.mark.parametrize(
    ("written", "token"),
    [
        ("1tb", "1000gb"),
        ("1 TB", "1000gb"),
        ("1000GB", "1000gb"),
        ("1,000 GB", "1000gb"),
        ("1.5TB", "1500gb"),
        ('27"', "27in"),
        ("27''", "27in"),
        ("27”", "27in"),
        ("27 inch", "27in"),
        ("27 inches", "27in"),
        ("27-inch", "27in"),
        ("27in", "27in"),
        ("27 in.", "27in"),
        ('68.6 cm (27")', "27in"),
        ('27.0"', "27in"),
        ("8'", "8ft"),
        ("8 ft.", "8ft"),
        ("8-ft", "8ft"),
        ("8 feet", "8ft"),
        ("18v", "18v"),
        ("18 V", "18v"),
        ("18-Volt", "18v"),
        ("18 volts", "18v"),
        ("5 gallon", "5gal"),
        ("5 gal.", "5gal"),
        ("5-Gal.", "5gal"),
        ("100W", "100w"),
        ("100 watt", "100w"),
        ("100-Watt", "100w"),
        ("1/2 in.", "1/2in"),
        ('1/2"', "1/2in"),
        ("1-3/8 in.", "1-3/8in"),
        ("1 3/8 inch", "1-3/8in"),
        (".025 inch", "0.025in"),
    ],
)
def test_each_spelling_of_a_measure_is_one_token(written: str, token: str) -> None:
    assert measure_tokens(written) == [token]


def test_a_text_yields_its_measures_in_order_each_once() -> None:
    assert measure_tokens("Orbit 1/2 in. x 100 ft. Eco-Lock Sprinkler Pipe") == ["1/2in", "100ft"]
    assert measure_tokens("8 GB/512 GB notebook, 8 GB") == ["8gb", "512gb"]
    assert measure_tokens("Rheem 30 Gal. Tall 4500/4500-Watt") == ["30gal", "4500w"]
    assert measures_text('Philips 50" TV 127 cm (50")', "power 240 V") == "50in 240v"


@pytest.mark.parametrize(
    "text",
    [
        "Store 'n' Go",  # an apostrophe after no number
        "o'clock",
        "PS50A457",  # a number inside a model code
        "v8 juice",
        "12 inchworm",  # a word that only starts like a unit
        "12/2 wire",
        "SATA 6Gb/s",  # a transfer rate, not a capacity
        "68.6 cm",  # centimetres are not a measure here (titles write the inches beside them)
        "1000 DPI",
        "laptop",
    ],
)
def test_what_is_no_measure_yields_no_token(text: str) -> None:
    assert measure_tokens(text) == []


def test_measures_weigh_as_titles_and_not_without_them() -> None:
    assert measure_boost({"title": 3.0, "brand": 2.0}) == pytest.approx(1.5)
    assert measure_boost({"brand": 1.0}) == 0.0
    assert measure_boost({"title": 0.0}) == 0.0


@pytest.fixture(scope="module")
def chorus_index(tmp_path_factory: pytest.TempPathFactory) -> TantivyIndex:
    products = [Product.from_dict(orjson.loads(line)) for line in CHORUS.read_bytes().splitlines()]
    index = TantivyIndex(Path(tmp_path_factory.mktemp("measures")) / "idx", create=True)
    index.index(products)
    return index


def _ids(index: TantivyIndex, text: str) -> list[str]:
    return index.search(SearchRequest(text, size=10)).ids


@pytest.mark.parametrize("text", ["1tb", "1 TB", "1tb hard drive", "1000gb"])
def test_one_terabyte_finds_the_1000_gb_drives_first(chorus_index: TantivyIndex, text: str) -> None:
    ids = _ids(chorus_index, text)
    assert set(ids[:2]) == THOUSAND_GB


@pytest.mark.parametrize("text", ["50 inch", "50in", '50"', "50-inch tv", "50 inch samsung"])
def test_fifty_inch_finds_the_127_cm_50_inch_screen_first(
    chorus_index: TantivyIndex, text: str
) -> None:
    assert _ids(chorus_index, text)[0] == FIFTY_INCH


def test_a_request_without_measures_ranks_as_before(chorus_index: TantivyIndex) -> None:
    """No measure, no measure clause: the query is the plain text query."""
    request = SearchRequest("samsung tv")
    assert chorus_index._measure_query(request) is None


def test_an_index_from_before_the_measures_asks_for_a_rebuild(tmp_path: Path) -> None:
    """The schema as it was before the ``measures`` field: such an index must be rebuilt
    (``make chat``'s ``index --if-missing`` does it), or ``1tb`` would silently find nothing."""
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    for field in TEXT_FIELDS.values():
        option = "position" if field in POSITION_FIELDS else "freq"
        builder.add_text_field(field, tokenizer_name=ANALYZER, index_option=option)
    for keyword in ("brand_kw", "category_kw", "attr_kv"):
        builder.add_text_field(keyword, tokenizer_name="raw", index_option="basic")
    builder.add_float_field("price", indexed=True, fast=True)
    builder.add_text_field("doc", stored=True, tokenizer_name="raw", index_option="basic")
    path = tmp_path / "old"
    path.mkdir()
    tantivy.Index(builder.build(), path=str(path))

    with pytest.raises(IndexOutdated, match="older shopagent"):
        TantivyIndex(path, dataset="chorus")
