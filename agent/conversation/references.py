"""References to the last list shown: "the second one", "#3", "compare 1 and 3", "more like 2".

A shopper who points at a product means the list on their screen, not whatever the model
remembers, so these are resolved here against ``last_shown`` (the positions the terminal
printed) and answered from the catalog: one product's details, a side-by-side table, or a new
search for similar products. A message that names no position is not a reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["details", "compare", "similar", "which"]
#: The kinds answered from the list on screen, with no search (``nodes.refer``); "similar"
#: searches.
ANSWERED_FROM_THE_LIST: frozenset[str] = frozenset({"details", "compare", "which"})

_ORDINALS = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4,
    "4th": 4, "fifth": 5, "5th": 5, "sixth": 6, "6th": 6, "seventh": 7, "7th": 7,
    "eighth": 8, "8th": 8, "ninth": 9, "9th": 9, "tenth": 10, "10th": 10,
}  # fmt: skip
_ORDINAL = "|".join(sorted(_ORDINALS, key=len, reverse=True))
#: A position written as "#3", "number 3", "no. 3", "item 3", "option 3", "the 3rd (one)".
_POSITION = re.compile(
    rf"#\s*(\d{{1,2}})\b|\b(?:number|no\.?|nr\.?|item|option|product|result|pick)\s*#?\s*"
    rf"(\d{{1,2}})\b|\bthe\s+({_ORDINAL})\b|\b({_ORDINAL})\s+(?:one|product|item|option)\b|"
    rf"\b(last)\s+(?:one|product|item|option)\b",
    re.I,
)
#: Bare numbers count as positions only after a comparison or similarity word.
_COMPARE = re.compile(r"\b(?:compare|comparison|versus|vs\.?|difference|differ)\b", re.I)
_SIMILAR = re.compile(
    r"\b(?:more\s+like|similar\s+to|like\s+(?:the\s+)?|something\s+like|others\s+like|"
    r"alternatives?\s+to)\s*(?:#|number\s+|no\.?\s*)?",
    re.I,
)
#: A question about the whole list: "which of these is waterproof?", "do any of them have
#: bluetooth?", "which ones are wireless?".
_WHICH = re.compile(
    r"\b(?:which|what)\s+(?:of\s+(?:these|them|those|the\s+\w+)|ones?)\b|"
    r"\b(?:do|does|are|is|have|has)\s+any\s+(?:of\s+)?(?:these|them|those)\b|"
    r"\bany\s+of\s+(?:these|them|those)\b",
    re.I,
)
_BARE_NUMBERS = re.compile(r"(?<![\w.$€£])(\d{1,2})(?![\w.%])")
#: Words a message pointing at the list has at most ("can you tell me more about the second
#: one please"): past that, a position that is not on the list is a number in a request
#: ("fogs up in like 10 seconds", "for the first time this year"), not a reference.
REFERENCE_WORDS = 10


@dataclass(frozen=True, slots=True)
class Reference:
    """What the shopper points at: 1-based positions in the last shown list."""

    kind: Kind
    positions: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "positions", tuple(self.positions))  # a checkpoint gives a list


def find_reference(text: str, shown_count: int) -> Reference | None:
    """The reference ``text`` makes to a list of ``shown_count`` products, if any.

    Positions outside the list are kept (the answer says they do not exist) so that "#7" of
    five, or "the second one" before any list, is never silently read as a search; in a
    message longer than ``REFERENCE_WORDS`` such a position is a number in a request.
    """
    text = text[:500]  # a reference is a few words
    found = _reference(text, shown_count)
    if found is None or all(1 <= p <= shown_count for p in found.positions):
        return found
    return found if len(text.split()) <= REFERENCE_WORDS else None


def without_reference(text: str) -> str:
    """``text`` without its similarity words and positions: what a "like the second one but
    cheaper" asks beyond the product it points at ("but cheaper")."""
    rest = _POSITION.sub(" ", _SIMILAR.sub(" ", text[:500]))
    return _BARE_NUMBERS.sub(" ", rest) if _SIMILAR.search(text) else rest


def _reference(text: str, shown_count: int) -> Reference | None:
    positions = _positions(text, shown_count)
    if _COMPARE.search(text):
        numbers = positions or [int(n) for n in _BARE_NUMBERS.findall(text)]
        if len(numbers) >= 2:
            return Reference("compare", tuple(dict.fromkeys(numbers)))
        if numbers:
            return Reference("details", (numbers[0],))
        return None
    similar = _SIMILAR.search(text)
    if similar:
        tail = text[similar.end() :]
        numbers = _positions(tail, shown_count) or [int(n) for n in _BARE_NUMBERS.findall(tail)[:1]]
        if numbers:
            return Reference("similar", (numbers[0],))
    if positions:
        return Reference("details", tuple(dict.fromkeys(positions)))
    if shown_count and _WHICH.search(text) and len(text.split()) <= REFERENCE_WORDS:
        return Reference("which", tuple(range(1, shown_count + 1)))
    return None


def _positions(text: str, shown_count: int) -> list[int]:
    found: list[int] = []
    for match in _POSITION.finditer(text):
        digits = match.group(1) or match.group(2)
        if digits:
            found.append(int(digits))
        elif match.group(3) or match.group(4):
            found.append(_ORDINALS[(match.group(3) or match.group(4)).lower()])
        elif match.group(5):
            found.append(shown_count)
    return found
