"""Price limits the shopper states in words ("under 50", "between $20 and $40").

A stated budget is a hard constraint, so the agent enforces it even when a small model forgets
to put it in its tool call: the search then never shows a product the shopper ruled out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

#: A number glued to a unit ("16gb", "27in") is not an amount of money.
_AMOUNT = (
    r"[$€£]?\s*(\d{1,7}(?:[.,]\d{1,2})?)(?![\w%\"'.])"
    r"(?:\s*(?:dollars|usd|eur|euros?|bucks)\b)?"
)
_BETWEEN = re.compile(rf"\bbetween\s+{_AMOUNT}\s+(?:and|to|-)\s+{_AMOUNT}", re.IGNORECASE)
_RANGE = re.compile(rf"(?<![\w.]){_AMOUNT}\s*(?:-|to)\s*{_AMOUNT}(?![\w.])", re.IGNORECASE)
_MAX = re.compile(
    rf"\b(?:under|below|less than|cheaper than|max(?:imum)?|at most|up to|no more than)\s*"
    rf"{_AMOUNT}",
    re.IGNORECASE,
)
_MIN = re.compile(
    rf"\b(?:over|above|more than|at least|min(?:imum)?|from)\s*{_AMOUNT}", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class PriceBounds:
    min_price: Decimal | None = None
    max_price: Decimal | None = None

    def is_empty(self) -> bool:
        return self.min_price is None and self.max_price is None


def price_bounds(text: str) -> PriceBounds:
    """The price range a message states, if any. Amounts need a price word or a currency sign
    next to them, so "a 27 inch monitor" or "USB 3.0" state nothing."""
    for pattern in (_BETWEEN, _RANGE):
        match = pattern.search(text)
        if match and _is_priced(text, match):
            low, high = sorted((_decimal(match.group(1)), _decimal(match.group(2))))
            return PriceBounds(low, high)
    most = _MAX.search(text)
    least = _MIN.search(text)
    return PriceBounds(
        _decimal(least.group(1)) if least else None,
        _decimal(most.group(1)) if most else None,
    )


def _is_priced(text: str, match: re.Match[str]) -> bool:
    """A bare range like "2-3" is only a price when money is mentioned around it."""
    if match.re is _BETWEEN:
        return True
    window = text[max(0, match.start() - 12) : match.end() + 12].lower()
    return any(sign in window for sign in ("$", "€", "£", "price", "dollar", "budget", "usd"))


def _decimal(amount: str) -> Decimal:
    return Decimal(amount.replace(",", "."))


def without_prices(text: str) -> str:
    """The message minus its price phrases: what is left is what to search for."""
    for pattern in (_BETWEEN, _MAX, _MIN):
        text = pattern.sub(" ", text)
    return " ".join(text.split())


def enforce_stated_prices(arguments: dict[str, object], user_text: str) -> list[str]:
    """Add the shopper's stated price limits to a search call's arguments when the model left
    them out; returns a note per limit added (recorded as a problem of the model's reply)."""
    bounds = price_bounds(user_text)
    notes: list[str] = []
    for key, value in (("max_price", bounds.max_price), ("min_price", bounds.min_price)):
        if value is not None and arguments.get(key) in (None, ""):
            arguments[key] = float(value)
            notes.append(f"{key} {value} added from the shopper's words")
    return notes
