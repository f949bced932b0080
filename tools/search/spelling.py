"""Typo tolerance from the index's own vocabulary: the ``fuzzy`` baseline.

tantivy's ``FuzzyTermQuery`` scores every match with a constant (an automaton query has no
term statistics), so a fuzzy search ranks ``wired`` as high as ``wireless`` for the typo
``wireles`` and loses BM25's ranking. Instead, each of the shopper's terms that no product
holds is corrected to the most frequent indexed term within Elasticsearch's ``AUTO`` edit
distance (none under 3 characters, 1 under 6, else 2; transpositions count 1; the first letter
is kept, as spell checkers assume), and the correction is added as an expansion at weight 1:
the shopper's words stay, the corrected word is scored by BM25 like any other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Protocol, runtime_checkable

from tools.search.request import Expansion, SearchRequest

#: Fields whose vocabulary corrections are drawn from (and whose counts rank them).
VOCABULARY_FIELDS: tuple[str, ...] = ("title", "description")
CORRECTION_WEIGHT = 1.0
_WORDS = re.compile(r"[^\W_]+", re.UNICODE)


@runtime_checkable
class VocabularyIndex(Protocol):
    """What correction needs of a lexical index (``TantivyIndex`` has it)."""

    def terms(self, text: str) -> list[str]: ...

    def doc_freq(self, field: str, term: str) -> int: ...

    def vocabulary(self, field: str, prefix: str) -> list[tuple[str, int]]: ...


def max_edits(term: str) -> int:
    """Elasticsearch's ``AUTO`` fuzziness for a term of this length."""
    if len(term) < 3:
        return 0
    return 1 if len(term) < 6 else 2


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a transposition costs 1), or ``limit + 1`` if above."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, previous2[j - 2] + 1)
            current[j] = value
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def correct_term(index: VocabularyIndex, term: str, word: str | None = None) -> str | None:
    """The most frequent indexed term near ``term``, when no product holds ``term`` itself.

    ``word`` is the term as the shopper wrote it (lower case): stemming mangles typos
    (``wireles`` stems to ``wirel``), so a candidate is as near as the nearer of the two.
    """
    word = word or term
    edits = max_edits(word)
    if not edits or not term.isalpha():
        return None
    if term_frequency(index, term):
        return None
    counts: dict[str, int] = {}
    for field in VOCABULARY_FIELDS:
        for candidate, count in index.vocabulary(field, term[0]):
            counts[candidate] = counts.get(candidate, 0) + count
    best: tuple[int, int, int, str] | None = None
    for candidate, count in counts.items():
        from_word = edit_distance(word, candidate, edits)
        distance = min(edit_distance(term, candidate, edits), from_word)
        if distance > edits or not candidate.isalpha():
            continue
        # the candidate must analyse to itself, or a backend re-analysing it would miss it
        if index.terms(candidate) != [candidate]:
            continue
        # nearest first, then nearest to the word as written, then the most frequent
        key = (distance, from_word, -count, candidate)
        if best is None or key < best:
            best = key
    return None if best is None else best[3]


#: A compound's parts must each be this frequent (products holding them, title or description).
MIN_PART_FREQUENCY = 20
MIN_COMPOUND_CHARS = 6
MIN_PART_CHARS = 3


def term_frequency(index: VocabularyIndex, term: str) -> int:
    """How many products hold ``term``, counted once per vocabulary field."""
    return sum(index.doc_freq(field, term) for field in VOCABULARY_FIELDS)


def split_compound(index: VocabularyIndex, word: str) -> str | None:
    """``frenchdoor`` → ``french door``: a word no product holds, written as the two frequent
    words the catalog spells apart (the split whose rarer part is most frequent), else None.

    Shoppers run words together (``stemcartridge``, ``prelit``, ``castiron``) more often than
    a typo corrector can reach: the join is 2+ edits from anything indexed.
    """
    word = word.lower()
    terms = index.terms(word)
    if len(word) < MIN_COMPOUND_CHARS or not word.isalpha() or len(terms) != 1:
        return None
    if term_frequency(index, terms[0]):
        return None
    best: tuple[int, str] | None = None
    for cut in range(MIN_PART_CHARS, len(word) - MIN_PART_CHARS + 1):
        left, right = index.terms(word[:cut]), index.terms(word[cut:])
        if len(left) != 1 or len(right) != 1:
            continue
        rarer = min(term_frequency(index, left[0]), term_frequency(index, right[0]))
        if rarer >= MIN_PART_FREQUENCY and (best is None or rarer > best[0]):
            best = (rarer, f"{word[:cut]} {word[cut:]}")
    return None if best is None else best[1]


def corrections(index: VocabularyIndex, text: str) -> list[tuple[str, str]]:
    """``(word, correction)`` for each word of ``text`` whose term no product holds."""
    found = []
    seen: set[str] = set()
    for word in _WORDS.findall(text.lower()):
        terms = index.terms(word)
        if len(terms) != 1 or terms[0] in seen:
            continue
        seen.add(terms[0])
        fixed = correct_term(index, terms[0], word)
        if fixed is not None:
            found.append((word, fixed))
    return found


def with_corrections(index: VocabularyIndex, request: SearchRequest) -> SearchRequest:
    """``request`` plus its corrections as weight-1 expansions (unchanged when none)."""
    fixes: Sequence[tuple[str, str]] = corrections(index, request.text)
    if not fixes:
        return request
    added: tuple[Expansion, ...] = tuple((fixed, CORRECTION_WEIGHT) for _, fixed in fixes)
    return replace(request, expansions=request.expansions + added)


def apply_fixes(query: str, fixes: Iterable[tuple[str, str]]) -> tuple[str, dict[str, str]]:
    """``query`` with each ``(wrong, right)`` applied as a whole-word, case-blind replacement.

    The one place a fix becomes a query: the ``fix`` argument of a model's call
    (``agent.protocol.tool_search``) and the search system's own respelling of a request
    (``tools.search.respelling``). A fix whose word is not in the query changes nothing, so a
    fix can never add words the shopper did not write. Returns the fixes that applied.
    """
    applied: dict[str, str] = {}
    for wrong, right in fixes:
        if not wrong or not right or wrong == right:
            continue
        pattern = re.compile(rf"(?<!\w){re.escape(wrong)}(?!\w)", re.IGNORECASE)
        fixed = pattern.sub(right.replace("\\", "\\\\"), query)
        if fixed != query:
            query = fixed
            applied[wrong] = right
    return query, applied
