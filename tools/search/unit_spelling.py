"""Shoppers write measures as ``8'``, ``1/2"``, ``2x4``, ``5 gallon`` or ``18v``; Home Depot's
titles as ``8 ft.``, ``1/2 in.``, ``2 x 4``, ``5 gal.`` and ``18-Volt``.

The index analyses ``8'`` to the number alone, so the unit a title spells out (``ft``) never
matches, and ``18v`` is one token no title holds. Rewriting the *query's* measures into the
catalog's spelling fixes both; rewriting both sides in the analyzer was measured and gains
nothing (Home Depot dev +0.0009 NDCG@10, not significant).

Measured per rule on 3,000 Home Depot train requests, on top of the typo fixes (NDCG@10):
symbols (``'``, ``"``, ``x``) +0.0058 on dev; ``inch`` +0.0009 (104 requests changed), ``feet``
+0.0011 (34), ``volt`` +0.0012 (32), ``gallon`` +0.0003, ``pound`` +0.0002, ``amp`` 0; ``watt``
→ ``-Watt`` *loses* (−0.0008, 0 of 5 changed requests won) and is left out. Chorus requests
hold no measure these rules change.

``tools.search.respelling`` applies them (with the typo and compound fixes) before the query
writer sees the request. Matching a quantity however either side writes it (``1tb`` and
``1000 GB``, ``50 inch`` and ``127 cm (50")``) is the index's, for every search:
``tools.search.measures``.
"""

from __future__ import annotations

import re

_NUMBER = r"\d+(?:[./]\d+)?"
_FEET = re.compile(rf"({_NUMBER})\s*'")
_INCHES = re.compile(rf'({_NUMBER})\s*(?:"|\'\'|”)')
_TIMES = re.compile(rf"({_NUMBER}(?: (?:ft|in)\.)?)\s*[xX*]\s*(?=\d)")
#: A number followed by a unit word, and the unit as the catalog's titles write it.
_UNIT_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rf"(?<![\w.])({_NUMBER})\s*(?:{words})(?!\w)\.?", re.IGNORECASE), spelled)
    for words, spelled in (
        ("inches|inch|in", r"\1 in."),
        ("feet|foot|ft", r"\1 ft."),
        ("gallons|gallon|gal", r"\1 gal."),
        ("pounds|pound|lbs|lb", r"\1 lb."),
        ("volts|volt|v", r"\1-Volt"),
        ("amps|amp", r"\1 Amp"),
    )
)


def catalog_spelling(word: str) -> str:
    """One query word with its symbol measures spelled the catalog's way (unchanged when none)."""
    spelled = _INCHES.sub(r"\1 in. ", word)
    spelled = _FEET.sub(r"\1 ft. ", spelled)
    spelled = _TIMES.sub(r"\1 x ", spelled)
    return " ".join(spelled.split())


def spell_measures(text: str) -> str:
    """``text`` with every measure spelled the catalog's way: symbols word by word, then unit
    words after a number (``1/2 inch`` → ``1/2 in.``, ``18v`` → ``18-Volt``)."""
    spelled = " ".join(catalog_spelling(word) for word in text.split())
    for pattern, replacement in _UNIT_WORDS:
        spelled = pattern.sub(replacement, spelled)
    return " ".join(spelled.split())
