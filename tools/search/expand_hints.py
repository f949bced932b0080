"""What the ``expand`` prompt shows: the request in the catalog's spelling, candidate words.

The expand action keeps the shopper's words and lets the query writer add a few words at a
lower weight (``agent.protocol.tool_search``). A 135M model cannot know the catalog's
vocabulary, so the prompt shows what the search system knows:

- ``text``: the request respelled the catalog's way (``tools.search.respelling``: measures,
  run-together words, typos), applied by the system because the trained policy never copied
  a fix it was offered;
- ``words``: candidate words, from the titles of the products nearest to the respelled request
  in the dense index (``tools.search.neighbour_words``), or, with no dense index, RM3 feedback
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
from tools.search.respelling import respell
from tools.search.spelling import VocabularyIndex

#: Candidate words an expand prompt shows.
CANDIDATES = 8
#: ``ExpandHints.source`` values.
NEIGHBOURS = "neighbours"
FEEDBACK = "feedback"


@dataclass(frozen=True, slots=True)
class ExpandHints:
    """The respelled request and candidate words shown for one request, and where the words
    came from."""

    text: str
    words: tuple[str, ...] = ()
    source: str = FEEDBACK


def expand_hints(
    lexical: FeedbackIndex,
    text: str,
    dense: DenseNeighbours | None = None,
    limit: int = CANDIDATES,
    *,
    fallback: bool = False,
) -> ExpandHints:
    """The hints for ``text``: its respelling from ``lexical``; words from ``dense`` if given.

    ``fallback``: a dense index that cannot answer (still building, missing, down) gives
    feedback words instead of an error -- for the chat, whose concept index may be building
    while the shopper types. Evals and collection leave it off, so one run never mixes sources.
    """
    spelled = respell(lexical, text).text if isinstance(lexical, VocabularyIndex) else text
    if dense is not None:
        try:
            words = neighbour_words(dense, lexical, spelled, limit)
        except SearchError:
            if not fallback:
                raise
        else:
            return ExpandHints(spelled, tuple(words), NEIGHBOURS)
    words = RelevanceModel(lexical).candidate_words(SearchRequest(spelled), limit)
    return ExpandHints(spelled, tuple(words), FEEDBACK)
