"""Reciprocal rank of the first relevant product (MRR when averaged over queries)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def reciprocal_rank(
    ranking: Sequence[str], judged: Mapping[str, float], k: int | None = None, threshold: float = 1
) -> float:
    for rank, pid in enumerate(ranking[:k] if k else ranking, start=1):
        if judged.get(pid, 0) >= threshold:
            return 1.0 / rank
    return 0.0
