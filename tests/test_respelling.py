"""``tools.search.respelling``: the request in the catalog's spelling, from a real index."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tools.catalog.product import Product
from tools.search.respelling import respell, surface_word
from tools.search.spelling import MIN_PART_FREQUENCY, split_compound
from tools.search.tantivy_backend import TantivyIndex


def product(number: int, title: str) -> Product:
    return Product(
        id=f"p{number}",
        title=title,
        description="",
        brand="Acme",
        category_path=("Home",),
        price=Decimal("10.00"),
    )


@pytest.fixture(scope="module")
def index() -> TantivyIndex:
    """French doors and wireless doorbells, each frequent enough to be a compound's part."""
    titles = [f"french door refrigerator {n}" for n in range(MIN_PART_FREQUENCY)]
    titles += [f"wireless doorbell chime {n}" for n in range(MIN_PART_FREQUENCY)]
    titles += ["frenchy glass vase"]  # a rare part: never the split chosen
    # stems the index stores: christmas -> christma; engineered and engines -> engin
    titles += ["Christmas light string", "christmas tree stand"]
    titles += ["engineered wood floor"] + [f"small engines oil {n}" for n in range(3)]
    built = TantivyIndex(None, create=True)
    built.index([product(n, title) for n, title in enumerate(titles)])
    return built


def test_a_run_together_word_no_product_holds_splits_into_two_frequent_words(
    index: TantivyIndex,
) -> None:
    assert split_compound(index, "frenchdoor") == "french door"
    assert split_compound(index, "FrenchDoor") == "french door"
    # a word some product holds is the catalog's own word: never split
    assert split_compound(index, "doorbell") is None
    # parts must each be frequent: 'frenchy' (one product) + 'door' is not a split
    assert split_compound(index, "frenchydoor") is None
    # too short, or not letters
    assert split_compound(index, "doors") is None
    assert split_compound(index, "door42bell") is None


def test_respell_fixes_measures_compounds_and_typos_and_says_which_words(
    index: TantivyIndex,
) -> None:
    spelled = respell(index, "wireles  doorbell 1/2 inch frenchdoor")
    assert spelled.text == "wireless doorbell 1/2 in. french door"
    assert spelled.fixes == (("wireles", "wireless"), ("frenchdoor", "french door"))
    # the catalog's own words are left exactly as written (spacing aside)
    same = respell(index, "french  door refrigerator")
    assert (same.text, same.fixes) == ("french door refrigerator", ())


def test_a_corrected_word_is_written_as_the_titles_write_it_and_searches_the_same(
    index: TantivyIndex,
) -> None:
    assert index.terms("christmas") == ["christma"]  # what a correction finds is a stem
    spelled = respell(index, "chrismas tree")
    assert spelled.text == "christmas tree"
    assert index.terms(spelled.text) == index.terms("christma tree")
    # of the spellings of one stem, the nearest to the shopper's word, not the most frequent
    assert surface_word(index, "engin", "enfineered") == "engineered"
    assert surface_word(index, "engin", "enjines") == "engines"
    # no title holds the term: the stem stays
    assert surface_word(index, "zzzq", "zzq") == "zzzq"


def test_a_fix_near_only_the_stem_of_a_word_is_no_fix() -> None:
    """A chat message's words are mostly words no product holds: "grateful" stems to "grate",
    one edit from the catalog's "grade", but "grade" is not a typo of "grateful"."""
    titles = [f"grade 8 bolt {n}" for n in range(3)] + ["wireless doorbell chime"]
    built = TantivyIndex(None, create=True)
    built.index([product(n, title) for n, title in enumerate(titles)])
    assert built.terms("grateful") == ["grate"]
    spelled = respell(built, "grateful for a wireles doorbell")
    assert spelled.text == "grateful for a wireless doorbell"
    assert spelled.fixes == (("wireles", "wireless"),)
    # a typo of the word itself is still fixed
    assert respell(built, "grdae 8 bolt").text == "grade 8 bolt"
