"""The embedded lexical backend: ranking, every filter kind, drift in place, safety of user text."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.catalog_samples import sample_products
from tests.index_contract import assert_keeps_the_product_index_contract
from tools.search.backend import IndexMissing
from tools.search.request import SearchFilters, SearchRequest
from tools.search.tantivy_backend import TantivyIndex


@pytest.fixture()
def index(tmp_path: Path) -> TantivyIndex:
    built = TantivyIndex(tmp_path / "idx", create=True)
    built.index(sample_products())
    return built


def search(index: TantivyIndex, text: str, **filters: object) -> list[str]:
    request = SearchRequest(text, filters=SearchFilters(**filters), size=10)  # type: ignore[arg-type]
    return index.search(request).ids


def test_keeps_the_product_index_contract(tmp_path: Path) -> None:
    products = sample_products()
    fresh = TantivyIndex(tmp_path / "contract", create=True)
    assert_keeps_the_product_index_contract(fresh, products, products[0].title)


def test_ranks_title_matches_first_with_stemming(index: TantivyIndex) -> None:
    ids = search(index, "gaming mice")
    assert set(ids[:2]) == {"m1", "m2"}
    assert "k1" in ids  # "gaming" alone still matches the keyboard, lower


def test_hits_rebuild_the_exact_catalog_product(index: TantivyIndex) -> None:
    hit = index.search(SearchRequest("toner cartridge")).hits[0]
    assert hit.product == next(p for p in sample_products() if p.id == "p1")
    assert hit.product.price == Decimal("49.95")
    assert hit.rank == 1 and hit.score > 0


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"brands": ("logitech",)}, {"m1", "m3"}),
        ({"brands": ("Razer", "Corsair")}, {"m2", "k1"}),
        ({"max_price": Decimal("49.99")}, {"m1", "m2"}),
        ({"min_price": Decimal("50"), "max_price": Decimal("130")}, {"m3", "k1"}),
        ({"category": "mice"}, {"m1", "m2", "m3"}),
        ({"attributes": {"Connectivity": "wireless"}}, {"m3"}),
        ({"attributes": {"max_dpi": "8000"}}, {"m1"}),
        ({"attributes": {"rgb": "true"}, "max_price": Decimal("100")}, {"m1", "m2"}),
    ],
)
def test_filters_restrict_like_the_reference_semantics(
    index: TantivyIndex, filters: dict[str, object], expected: set[str]
) -> None:
    found = set(search(index, "mouse keyboard gaming", **filters))
    assert found == expected
    parsed = SearchFilters(**filters)  # type: ignore[arg-type]
    assert all(parsed.matches(p) for p in sample_products() if p.id in found)


def test_empty_text_with_filters_lists_matching_products(index: TantivyIndex) -> None:
    assert set(search(index, "", brands=("Sony", "JBL"))) == {"h1", "s1"}
    assert set(search(index, "   ", max_price=Decimal("30"))) == {"m1"}


def test_filters_do_not_change_the_text_score(index: TantivyIndex) -> None:
    plain = index.search(SearchRequest("gaming mouse")).hits
    filtered = index.search(
        SearchRequest("gaming mouse", filters=SearchFilters(brands=("Razer",)))
    ).hits
    razer = next(h for h in plain if h.product.id == "m2")
    assert filtered[0].score == pytest.approx(razer.score)


def test_query_syntax_in_user_text_is_searched_as_words(index: TantivyIndex) -> None:
    ids = search(index, 'title:speaker OR *:* AND price:[0 TO 1] "unbalanced')
    assert ids[0] == "s1"
    assert "n1" not in ids  # *:* did not turn into match-all


def test_fuzzy_flag_tolerates_typos(index: TantivyIndex) -> None:
    assert search(index, "hedphones") == []
    fuzzy = index.search(SearchRequest("hedphones", fuzzy=True)).ids
    assert fuzzy[0] == "h1"


def test_boosts_change_which_field_wins(index: TantivyIndex) -> None:
    by_description = index.search(
        SearchRequest("wireless", boosts={"title": 0.1, "description": 10.0})
    ).ids
    assert by_description[0] == "m3"  # "Advanced wireless mouse" in its description


def test_delete_takes_effect_for_the_next_search(index: TantivyIndex) -> None:
    assert "m2" in search(index, "razer")
    assert index.delete(["m2"]) == 1
    assert search(index, "razer") == []
    assert index.get("m2") is None
    assert index.count() == len(sample_products()) - 1


def test_upsert_replaces_in_place_without_duplicates(index: TantivyIndex) -> None:
    updated = sample_products()[0].__class__.from_dict(
        {
            **sample_products()[0].to_dict(),
            "price": "19.99",
            "title": "Logitech G203 mouse refreshed edition",
        }
    )
    index.upsert([updated])
    assert index.count() == len(sample_products())
    assert index.get("m1") == updated
    assert search(index, "refreshed edition") == ["m1"]


def test_reopening_from_disk_keeps_the_index(index: TantivyIndex, tmp_path: Path) -> None:
    reopened = TantivyIndex(tmp_path / "idx")
    assert reopened.count() == len(sample_products())
    assert search(reopened, "toner") == ["p1"]


def test_missing_index_names_the_command_that_builds_it(tmp_path: Path) -> None:
    with pytest.raises(IndexMissing, match="shopagent index --dataset chorus"):
        TantivyIndex(tmp_path / "nothing", dataset="chorus")


def test_a_read_only_index_is_searched_in_a_snapshot_removed_with_the_index(
    index: TantivyIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock tantivy takes to search fails on a read-only folder; the search runs in a
    private copy, which goes with the index object (before, its cleanup at exit could race
    tantivy's threads and print a traceback under the command's error line)."""
    import gc

    import tools.search.tantivy_backend as backend

    real_open = backend.TantivyIndex._open
    folder = tmp_path / "idx"

    def lock_refused_in_the_home(self, where, path, create):  # type: ignore[no-untyped-def]
        if where == folder:
            raise ValueError('Failed to acquire Lockfile: ReadOnlyFilesystem message: "ro"')
        return real_open(self, where, path, create)

    monkeypatch.setattr(backend.TantivyIndex, "_open", lock_refused_in_the_home)
    made: list[Path] = []
    real_snapshot = backend._read_only_snapshot
    monkeypatch.setattr(
        backend, "_read_only_snapshot", lambda path: made.append(real_snapshot(path)) or made[-1]
    )
    reopened = TantivyIndex(folder)
    assert search(reopened, "toner") == ["p1"]
    assert made and made[0].is_dir() and made[0] != folder
    del reopened
    gc.collect()
    assert not made[0].exists()
