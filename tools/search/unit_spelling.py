"""Shoppers write measures as ``8'``, ``1/2"`` or ``2x4``; catalogs as ``8 ft.``, ``2 x 4``.

The index analyses ``8'`` to the number alone, so the unit a title spells out (``ft``) never
matches. Rewriting the *query's* spelling into the catalog's adds that unit word; rewriting
both sides in the analyzer was measured and gains nothing (Home Depot dev +0.0009 NDCG@10,
not significant), while the query-side spelling as a fix gains +0.006 over the typo fix alone
on the 43 of 1,000 dev requests it changes. So it is offered as a fix the query writer may
take (``tools.search.expand_hints``), never applied behind the shopper's back.

Each fix is one whitespace-separated word of the query and its catalog spelling, so the
whole-word replacement that applies fixes (``tools.search.spelling.apply_fixes``) finds it.
"""

from __future__ import annotations

import re

_NUMBER = r"\d+(?:[./]\d+)?"
_FEET = re.compile(rf"({_NUMBER})\s*'")
_INCHES = re.compile(rf'({_NUMBER})\s*(?:"|\'\'|”)')
_TIMES = re.compile(rf"({_NUMBER}(?: (?:ft|in)\.)?)\s*[xX*]\s*(?=\d)")


def catalog_spelling(word: str) -> str:
    """One query word with its measures spelled the catalog's way (unchanged when none)."""
    spelled = _INCHES.sub(r"\1 in. ", word)
    spelled = _FEET.sub(r"\1 ft. ", spelled)
    spelled = _TIMES.sub(r"\1 x ", spelled)
    return " ".join(spelled.split())


def unit_spellings(text: str) -> list[tuple[str, str]]:
    """``(word, catalog spelling)`` for each distinct word of ``text`` that spells a measure."""
    found: dict[str, str] = {}
    for word in text.split():
        spelled = catalog_spelling(word)
        if spelled != word and word not in found:
            found[word] = spelled
    return list(found.items())
