"""What the ``expand`` prompt shows beside the shopper's words: fixes and candidate words.

The expand action keeps the shopper's words and lets the query writer take fixes and add a
few words at a lower weight (``agent.protocol.tool_search``). A 135M model cannot know the
catalog's vocabulary, so the prompt shows what the search system knows:

- ``fixes``: the index's own typo corrections (``tools.search.spelling.corrections``: a word no
  product holds → the nearest frequent indexed term) and the catalog's spelling of measures
  (``tools.search.unit_spelling``: ``8'`` → ``8 ft.``), each ``(word as written, fix)``;
- ``words``: candidate words, from the titles of the products nearest to the fixed request in
  the dense index (``tools.search.neighbour_words``), or, with no dense index, RM3 feedback
  words from the top raw results (``tools.search.prf``; measured to carry no learnable gain on
  Home Depot, kept so the action works where only the lexical index exists).

``shopagent eval --strategy expand``, ``shopagent collect`` (sampled and enumerated) and the
RL datasets all read the hints from here, so what is trained is what is measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.search.backend import SearchError
from tools.search.neighbour_words import DenseNeighbours, neighbour_words
from tools.search.prf import FeedbackIndex, RelevanceModel
from tools.search.request import SearchRequest
from tools.search.spelling import VocabularyIndex, apply_fixes, corrections
from tools.search.unit_spelling import unit_spellings

#: Candidate words an expand prompt shows.
CANDIDATES = 8
#: ``ExpandHints.source`` values.
NEIGHBOURS = "neighbours"
FEEDBACK = "feedback"


@dataclass(frozen=True, slots=True)
class ExpandHints:
    """The fixes and candidate words shown for one request, and where the words came from."""

    fixes: tuple[tuple[str, str], ...] = ()
    words: tuple[str, ...] = ()
    source: str = FEEDBACK


def request_fixes(index: VocabularyIndex, text: str) -> tuple[tuple[str, str], ...]:
    """Typo corrections, then measure spellings, one fix per written word."""
    fixes: dict[str, str] = {}
    for word, fix in [*corrections(index, text), *unit_spellings(text)]:
        fixes.setdefault(word, fix)
    return tuple(fixes.items())


def expand_hints(
    lexical: FeedbackIndex,
    text: str,
    dense: DenseNeighbours | None = None,
    limit: int = CANDIDATES,
    *,
    fallback: bool = False,
) -> ExpandHints:
    """The hints for ``text``: fixes from ``lexical``; words from ``dense`` when given.

    ``fallback``: a dense index that cannot answer (still building, missing, down) gives
    feedback words instead of an error -- for the chat, whose concept index may be building
    while the shopper types. Evals and collection leave it off, so one run never mixes sources.
    """
    fixes = request_fixes(lexical, text) if isinstance(lexical, VocabularyIndex) else ()
    fixed = apply_fixes(text, fixes)[0]
    if dense is not None:
        try:
            words = neighbour_words(dense, lexical, fixed, limit)
        except SearchError:
            if not fallback:
                raise
        else:
            return ExpandHints(fixes, tuple(words), NEIGHBOURS)
    words = RelevanceModel(lexical).candidate_words(SearchRequest(fixed), limit)
    return ExpandHints(fixes, tuple(words), FEEDBACK)
