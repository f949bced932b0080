"""The shopper's request in the catalog's spelling: what the query writer is shown to work on.

Three fixes, from what the search system itself knows, in this order:

1. measures as the catalog writes them (``tools.search.unit_spelling``: ``1/2 inch`` →
   ``1/2 in.``, ``8'`` → ``8 ft.``, ``18v`` → ``18-Volt``);
2. a run-together word no product holds, split into two frequent words
   (``tools.search.spelling.split_compound``: ``frenchdoor`` → ``french door``);
3. otherwise a word no product holds, corrected to the nearest frequent indexed term
   (``tools.search.spelling.correct_term``: ``wireles`` → ``wireless``).

Why the system applies them rather than offering them to the model: the policy trained on
prompts that offered the typo and measure fixes as a ``Fixes:`` line never copied one (0 of
1,000 Home Depot dev calls), although taking them is the largest gain of the expand action.
Measured on Home Depot, as NDCG@10 of the respelled request alone, no model (chosen on 3,000
train requests: +0.0219 there): dev **+0.0209** over the shopper's words (p = 2.6e-6, 76
requests better, 35 worse), of which typos and symbol measures +0.0135, unit words +0.0020,
compounds +0.0054. Chorus requests hold nothing these fixes change. ``shopagent eval
--strategy spelled`` measures it; the model's own share is what ``expand`` adds on top.

The index stores stems, so a corrected term is a stem (``christma``, ``temperatur``); it is
written back as the word the catalog's titles spell it with (``surface_word``: ``christmas``),
which the index analyses to the same term, so the search is unchanged and the query shown to
the writer and to the shopper is words.

A correction replaces the shopper's word (``apply_fixes``). The chat says what it searched
for when that differs from the shopper's words (``agent.conversation.compose``, from the query
the writer wrote), as search engines' "showing results for".
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from tools.search.request import SearchRequest
from tools.search.results import SearchResults
from tools.search.spelling import (
    VocabularyIndex,
    apply_fixes,
    correct_term,
    edit_distance,
    max_edits,
    split_compound,
)
from tools.search.tantivy_schema import surface_analyzer
from tools.search.unit_spelling import spell_measures

#: Titles read for a term's written form.
SURFACE_TITLES = 20


@runtime_checkable
class TitleSearch(Protocol):
    """What ``surface_word`` needs besides the vocabulary: a search (``TantivyIndex`` has it)."""

    def search(self, request: SearchRequest) -> SearchResults: ...


_WORDS = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Respelling:
    """A request in the catalog's spelling, and the words fixed on the way: the ``(word,
    fix)`` pairs of steps 2 and 3 (measures are respelled in place)."""

    text: str
    fixes: tuple[tuple[str, str], ...] = ()


def word_fixes(index: VocabularyIndex, text: str) -> list[tuple[str, str]]:
    """``(word, fix)`` for each distinct word no product holds that splits or corrects."""
    fixes: list[tuple[str, str]] = []
    seen: set[str] = set()
    for word in _WORDS.findall(text.lower()):
        if word in seen:
            continue
        seen.add(word)
        fix = split_compound(index, word)
        if fix is None:
            terms = index.terms(word)
            fix = correct_term(index, terms[0], word) if len(terms) == 1 else None
            if fix is not None:
                fix = written_near(word, surface_word(index, fix, word))
        if fix is not None:
            fixes.append((word, fix))
    return fixes


def written_near(word: str, fix: str) -> str | None:
    """``fix`` when it is as near to the word as written as a typo can be (``max_edits``),
    else None. ``correct_term`` may find a candidate near the word's *stem*, and stems of
    words no product holds are short: "asked" stems to "ask", one edit from "ack"; "grateful"
    to "grate", one from "grade". Such a fix is a different word, and in a chat message, whose
    words are mostly not product words, it searches for something the shopper never said.
    The stem route still fixes what stemming mangles ("wireles" is one edit from "wireless")."""
    limit = max_edits(word)
    return fix if edit_distance(word, fix, limit) <= limit else None


def surface_word(
    index: VocabularyIndex, term: str, written: str = "", titles: int = SURFACE_TITLES
) -> str:
    """``term`` (an indexed stem) as the titles that hold it write it, else itself: of the
    spellings the top ``titles`` titles use, the nearest to the shopper's ``written`` word,
    then the most frequent (``enfineered`` is ``engineered``, not the commoner ``engines``).

    Only a word the index analyses back to exactly ``term`` is taken, so searching the word
    finds what searching the stem finds.
    """
    if not isinstance(index, TitleSearch):
        return term
    request = SearchRequest(term, boosts={"title": 1.0}, size=titles)
    surface = surface_analyzer()
    spellings: Counter[str] = Counter()
    for hit in index.search(request).hits:
        for word in set(surface.analyze(hit.product.title)):
            if index.terms(word) == [term]:
                spellings[word] += 1
    if not spellings:
        return term
    limit = max(len(word) for word in (written, *spellings))
    return min(
        spellings,
        key=lambda word: (edit_distance(written, word, limit) if written else 0, -spellings[word]),
    )


def respell(index: VocabularyIndex, text: str) -> Respelling:
    """``text`` in the catalog's spelling (module doc), with what changed."""
    measured = spell_measures(text)
    fixed, applied = apply_fixes(measured, word_fixes(index, measured))
    return Respelling(fixed, tuple(applied.items()))
