"""Whether the model's own prose may reach the shopper, or a composed reply replaces it.

Grounding (``agent.conversation.grounding``) removes what no result backs; this decides about
what is left. A reply a shopper should read whole is one where nothing had to be removed (no
violation), nothing had to be cut (no markup, no repeated sentence: a small model loops until
``max_tokens``) and that ends where a sentence ends (a reply cut by ``max_tokens`` does not).
Anything else is replaced by the reply ``agent.conversation.compose`` writes from the results,
so the shopper never reads half a claim.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agent.conversation.grounding import prose_end

_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_ENDINGS = (".", "!", "?", ")", '"')


def prose_passes(raw: str, grounded: str, violations: Sequence[str]) -> bool:
    """May the shopper read ``grounded`` (the model's ``raw`` reply after grounding)?"""
    prose = raw[: prose_end(raw)].strip()
    if violations or not grounded.strip() or prose != raw.strip():
        return False
    sentences = [" ".join(s.lower().split()) for s in _SENTENCE.split(prose) if s]
    if len(sentences) != len(set(sentences)):
        return False
    return grounded.rstrip().endswith(_ENDINGS)
