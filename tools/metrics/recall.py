"""Recall@k: the share of relevant products (gain >= threshold) found in the top k."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def recall(
    ranking: Sequence[str], judged: Mapping[str, float], k: int, threshold: float = 1
) -> float:
    relevant = {pid for pid, gain in judged.items() if gain >= threshold}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)
