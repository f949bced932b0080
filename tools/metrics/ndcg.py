"""NDCG with linear graded gains and log2 discounts — the trec_eval / ranx ``ndcg`` definition.

Unjudged products count as gain 0; the ideal ranking is built from all judged gains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

#: The cutoff of every reward (the chat's episode reward, the RL reward) and of the headline
#: number ``shopagent eval`` reports.
NDCG_K = 10


def dcg(gains: Sequence[float], k: int) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]) if g > 0)


def ndcg(ranking: Sequence[str], judged: Mapping[str, float], k: int) -> float:
    ideal = dcg(sorted((g for g in judged.values() if g > 0), reverse=True), k)
    if ideal == 0:
        return 0.0
    return dcg([judged.get(pid, 0) for pid in _unique(ranking)], k) / ideal


def _unique(ranking: Sequence[str]) -> list[str]:
    """A product listed twice is scored once, at its best rank."""
    return list(dict.fromkeys(ranking))
