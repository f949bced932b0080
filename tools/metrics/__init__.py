"""Ranking metrics, one file per concept (the ranx layout), cross-checked against ranx in tests."""

from tools.metrics.evaluate import METRICS, evaluate, mean_scores
from tools.metrics.ndcg import NDCG_K, dcg, ndcg
from tools.metrics.recall import recall
from tools.metrics.reciprocal_rank import reciprocal_rank
from tools.metrics.run import Run

__all__ = [
    "METRICS",
    "NDCG_K",
    "Run",
    "dcg",
    "evaluate",
    "mean_scores",
    "ndcg",
    "recall",
    "reciprocal_rank",
]
