"""Measures spelled the catalog's way, offered as fixes the one fix path applies."""

from __future__ import annotations

from tools.search.spelling import apply_fixes
from tools.search.unit_spelling import catalog_spelling, unit_spellings


def test_feet_inches_and_times_are_spelled_as_home_depot_titles_spell_them() -> None:
    assert catalog_spelling("8'") == "8 ft."
    assert catalog_spelling('1/2"') == "1/2 in."
    assert catalog_spelling("2x4x8") == "2 x 4 x 8"
    assert catalog_spelling("4'x8'") == "4 ft. x 8 ft."
    assert catalog_spelling("1.5''") == "1.5 in."
    for unchanged in ("lumber", "12/2", "x10", "6", "ft.", "o'clock"):
        assert catalog_spelling(unchanged) == unchanged


def test_fixes_are_whole_words_of_the_request_and_apply_as_written() -> None:
    text = "8' x 10' rug 8' runner"
    fixes = unit_spellings(text)
    assert fixes == [("8'", "8 ft."), ("10'", "10 ft.")]
    fixed, applied = apply_fixes(text, fixes)
    assert fixed == "8 ft. x 10 ft. rug 8 ft. runner"
    assert applied == dict(fixes)
    assert unit_spellings("cordless drill") == []
    # a fix never touches a longer number that merely ends the same way
    assert apply_fixes("18' hose", [("8'", "8 ft.")]) == ("18' hose", {})
