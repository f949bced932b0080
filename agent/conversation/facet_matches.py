"""Brand and category names in a shopper's message, matched against the catalog's facets.

Why against the facets: a catalog's brands are its own (``tools.search.facets``), never a
list in the code, so "logitec" finds Logitech in one catalog and nothing in another. A brand
after a negation ("not HP") is unwanted; after a possessive ("my brother") it is a person. A
category counts only when the shopper names it as one ("in Monitors", "the Mice section"):
many catalogs leave products uncategorised, so a product word alone stays a search word.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

from agent.conversation.message_words import FILLER, NEGATION, plain_words
from tools.search.facets import Facets

_NOT = re.compile(
    rf"\b(?:{NEGATION}|but\s+not|other\s+than|anything\s+but|never|hate|"
    r"(?:don'?t|do\s+not|doesn'?t|won'?t)\s+(?:want|like|need)(?:\s+(?:a|an|any))?|"
    r"no\s+more|rather\s+than|instead\s+of)\s*$",
    re.I,
)
#: What may stand between two brands of one list ("Dell or HP", "Sony, JBL and LG"): the
#: second is wanted or unwanted as the first ("anything but Dell or HP" rules out both).
_LIST_JOIN = re.compile(r"\s*(?:,|/|&)?\s*(?:(?:or|and|nor)\s+)?(?:not\s+)?", re.I)
_POSSESSIVE = re.compile(r"\b(?:my|his|her|our|your|their)\s*$", re.I)
BRAND_TYPO_CUTOFF = 0.85


def brands_in(text: str, facets: Facets) -> tuple[str, list[str], list[str]]:
    """Brand names in ``text`` (wanted, unwanted) and the text without them.

    A brand after a negation ("not HP", "except Logitech", "I don't want Sony") is unwanted,
    and so is the rest of its list ("anything but Dell or HP"); the negation goes with it, so
    "except" is not left behind as a word to search. Several wanted brands ("Sony or Samsung")
    are all kept: any of them will do.
    """
    if not facets.brands:
        return text, [], []
    wanted: list[str] = []
    unwanted: list[str] = []
    spans: list[tuple[int, int]] = []
    previous: tuple[int, bool] | None = None  # where the last brand ended, and if unwanted
    tokens = list(re.finditer(r"[\w][\w.'!&-]*", text))
    i = 0
    while i < len(tokens):
        matched = None
        for size in (3, 2, 1):
            if i + size > len(tokens):
                continue
            start, end = tokens[i].start(), tokens[i + size - 1].end()
            value = facets.brand(text[start:end].rstrip(".'"))
            if value is None and size == 1:
                value = _typo_brand(tokens[i].group(0), facets)
            if value is not None:
                matched = (value.name, start, end, size)
                break
        if matched is None:
            i += 1
            continue
        name, start, end, size = matched
        before = text[:start]
        if _POSSESSIVE.search(before):  # "a gift for my brother": a person, not the brand
            i += size
            continue
        negation = _NOT.search(before)
        joined = previous is not None and _LIST_JOIN.fullmatch(text[previous[0] : start])
        excluded = bool(negation) or bool(joined and previous and previous[1])
        (unwanted if excluded else wanted).append(name)
        spans.append((negation.start() if negation else start, end))
        previous = (end, excluded)
        i += size
    for start, end in reversed(spans):
        text = text[:start] + " " + text[end:]
    text = re.sub(r"\b(?:only|just|exclusively|made\s+by)\b", " ", text, flags=re.I)
    return text, list(dict.fromkeys(wanted)), list(dict.fromkeys(unwanted))


def _typo_brand(token: str, facets: Facets) -> Any:
    word = token.lower()
    if len(word) < 5 or word in FILLER:
        return None
    names = [v.name.lower() for v in facets.brands if " " not in v.name and len(v.name) >= 5]
    close = difflib.get_close_matches(word, names, n=1, cutoff=BRAND_TYPO_CUTOFF)
    return facets.brand(close[0]) if close else None


_CATEGORY_CUE = re.compile(
    r"\b(?:categor(?:y|ies)|section|department|aisle|in|among|under)\s+(?:the\s+)?"
    r"(?P<what>[\w&'-]+(?:\s+[\w&'-]+){0,2})",
    re.I,
)


def category_in(text: str, facets: Facets) -> str | None:
    """A category the shopper names as one ("in Monitors", "the Mice category"): a product
    word alone stays a search word, since many catalogs leave products uncategorised."""
    if not facets.categories:
        return None
    for match in _CATEGORY_CUE.finditer(text):
        found = _category_phrase(match.group("what"), facets)
        if found:
            return found
    before = re.search(
        r"([\w&'-]+(?:\s+[\w&'-]+){0,2})\s+(?:category|section|department)\b", text, re.I
    )
    return _category_phrase(before.group(1), facets) if before else None


def _category_phrase(text: str, facets: Facets) -> str | None:
    words = plain_words(text)
    for size in (3, 2, 1):
        for i in range(len(words) - size + 1):
            phrase = " ".join(words[i : i + size])
            for candidate in (phrase, phrase + "s", phrase.removesuffix("s")):
                value = facets.category(candidate)
                if value is not None:
                    return value.name
    return None
