"""Measures spelled the catalog's way before the query writer sees the request."""

from __future__ import annotations

from tools.search.unit_spelling import catalog_spelling, spell_measures


def test_feet_inches_and_times_are_spelled_as_home_depot_titles_spell_them() -> None:
    assert catalog_spelling("8'") == "8 ft."
    assert catalog_spelling('1/2"') == "1/2 in."
    assert catalog_spelling("2x4x8") == "2 x 4 x 8"
    assert catalog_spelling("4'x8'") == "4 ft. x 8 ft."
    assert catalog_spelling("1.5''") == "1.5 in."
    for unchanged in ("lumber", "12/2", "x10", "6", "ft.", "o'clock"):
        assert catalog_spelling(unchanged) == unchanged


def test_unit_words_after_a_number_take_the_catalog_spelling() -> None:
    assert spell_measures("1/2 inch pvc elbow") == "1/2 in. pvc elbow"
    assert spell_measures("8' x 10' rug") == "8 ft. x 10 ft. rug"
    assert spell_measures("6ft ladder") == "6 ft. ladder"
    assert spell_measures("5 Gallon bucket") == "5 gal. bucket"
    assert spell_measures("50 lbs sand") == "50 lb. sand"
    assert spell_measures("18v drill") == "18-Volt drill"
    assert spell_measures("15 amp breaker") == "15 Amp breaker"
    # already the catalog's spelling: unchanged, the dot not doubled
    assert spell_measures("3 ft. fence 1/2 in. pipe") == "3 ft. fence 1/2 in. pipe"
    # a unit word needs a number before it; a word that only starts like a unit stays
    for unchanged in ("in the box", "v8 juice", "12 inchworm", "feet warmer", "100w bulb"):
        assert spell_measures(unchanged) == unchanged
