"""Measures as one token per quantity, so that ``1tb`` finds ``1000 GB`` and ``50 inch`` finds
``127 cm (50")``.

The English analyzer keeps ``1tb`` as one term, splits ``1 TB`` into ``1`` and ``tb`` and drops
the ``"`` of ``50"``: the same quantity written three ways shares no term, so a shopper's
``1tb`` never met Chorus's ``1000 GB`` and ``50 inch`` met ``127 cm (50")`` only on ``50``.
tantivy's Python builder offers built-in filters only and Elasticsearch's would be another
implementation, so the normalisation is this module's Python text processing, shared by both
backends: each product's title and attribute text yields canonical tokens (``measures_text``,
stored in a ``measures`` field that both backends analyse by whitespace alone), and the request
text yields the same tokens (``measure_tokens``), searched in that field beside the text query.

Canonical tokens: number (no thousands separators, no trailing zeros, fractions as written,
``1 3/8`` as ``1-3/8``) then unit: storage in ``gb`` (``1 TB`` = ``1000gb``, the decimal
terabyte drive makers and Icecat titles use), ``in`` (``"``, ``''``, ``inch``, ``in.``),
``ft`` (``'``, ``ft.``, ``feet``), ``v`` (``18-Volt``), ``w`` (``100W``, ``100 watt``) and
``gal`` (``5 gal.``, ``5 gallon``). Centimetres are left out: Icecat titles write the inches
beside them (``68.6 cm (27")``), and no shopper's request in either dataset writes cm.

Added, not replacing: the measure clause is a ``should`` beside the text query (either may
match), so a request without a measure is searched exactly as before, and Chorus requests
(none holds a measure) rank as before. Its weight, half the title boost, was chosen on 3,000
Home Depot train requests (NDCG@10 over the same search without it): 0.5 gains +0.0040 on the
shopper's words (64 requests better, 26 worse) and +0.0007 on the respelled tool path (42/25);
1.0 gains the same with more losses (67/38, +0.0002) and 2.0 loses on the tool path (−0.0018).
Per unit at 0.5 (shopper's words / tool path): inches +0.0013 / +0.0007, feet +0.0011 /
−0.0003 (the respelling already writes ``8'`` as ``8 ft.``, and shoppers also write ``30'``
for inches), volts +0.0012 / +0.0003, gallons +0.0004 / 0, watts 0 / 0 (8 requests changed,
3 better), storage 0 (no Home Depot request names one).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

#: The index field (both backends) holding a product's measure tokens, whitespace-analysed.
MEASURES_FIELD = "measures"
#: A measure match scores as this share of a title match (the request's ``title`` boost).
MEASURE_WEIGHT = 0.5

_NUMBER = (
    r"(?P<number>\d+[- ]\d{1,2}/\d{1,2}"  # mixed fraction: 1-3/8, 1 3/8
    r"|\d{1,2}/\d{1,2}"  # fraction: 1/2, 15/16
    r"|\d{1,3}(?:,\d{3})+(?:\.\d+)?"  # thousands: 1,000
    r"|\d*\.\d+|\d+)"  # decimal or whole: 68.6, .025, 27
)
#: Unit spellings -> canonical unit; longer spellings first, words end at a non-alphanumeric.
_UNITS: tuple[tuple[str, str], ...] = (
    (r"tb(?![a-z0-9]|/s)", "tb"),
    (r"gb(?![a-z0-9]|/s)", "gb"),  # not GB/s, a transfer rate
    (r"inch(?:es)?(?![a-z0-9])|in\.|in(?![a-z0-9])|\"|''|”|″", "in"),
    (r"feet(?![a-z0-9])|foot(?![a-z0-9])|ft\.?(?![a-z0-9])|'(?![a-z])|′", "ft"),
    (r"volts?(?![a-z0-9])|v(?![a-z0-9])", "v"),
    (r"watts?(?![a-z0-9])|w(?![a-z0-9])", "w"),
    (r"gallons?(?![a-z0-9])|gal(?![a-z0-9])\.?", "gal"),
)
_UNIT_NAMES = {f"u{i}": canonical for i, (_, canonical) in enumerate(_UNITS)}
_MEASURE = re.compile(
    rf"(?<![\w.,]){_NUMBER}\s*(?:-\s*)?(?:"
    + "|".join(f"(?P<u{i}>{spelled})" for i, (spelled, _) in enumerate(_UNITS))
    + ")",
    re.IGNORECASE,
)
#: Storage is kept in gigabytes.
_TO_GB = {"tb": Decimal(1000), "gb": Decimal(1)}


def _canonical_number(written: str) -> str | None:
    """``1,000`` -> ``1000``, ``27.0`` -> ``27``, ``.5`` -> ``0.5``, ``1 3/8`` -> ``1-3/8``."""
    if "/" in written:
        return re.sub(r"[- ]", "-", written)
    try:
        value = Decimal(written.replace(",", ""))
    except InvalidOperation:
        return None
    return _plain(value)


def _plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros (``Decimal("1E+3")`` is ``1000``)."""
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def measure_tokens(text: str) -> list[str]:
    """The canonical measure tokens of ``text``, in order, each once (module doc)."""
    tokens: list[str] = []
    for match in _MEASURE.finditer(text):
        unit = _UNIT_NAMES[next(name for name in _UNIT_NAMES if match.group(name) is not None)]
        number = _canonical_number(match.group("number"))
        if number is None:
            continue
        if unit in _TO_GB:
            if "/" in number:
                continue
            number, unit = _plain(Decimal(number) * _TO_GB[unit]), "gb"
        token = f"{number}{unit}"
        if token not in tokens:
            tokens.append(token)
    return tokens


def measures_text(*texts: str) -> str:
    """What a product's ``measures`` field holds: the tokens of its texts, space-separated."""
    return " ".join(dict.fromkeys(token for text in texts for token in measure_tokens(text)))


def measure_boost(boosts: Mapping[str, float]) -> float:
    """The boost of a request's measure clause: ``MEASURE_WEIGHT`` of its title boost, so a
    request that does not search titles does not search measures either."""
    return max(boosts.get("title", 0.0), 0.0) * MEASURE_WEIGHT
