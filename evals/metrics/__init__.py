"""Ranking metrics, one file per concept (the ranx layout), cross-checked against ranx in tests."""

from evals.metrics.evaluate import METRICS, evaluate, mean_scores
from evals.metrics.ndcg import dcg, ndcg
from evals.metrics.recall import recall
from evals.metrics.reciprocal_rank import reciprocal_rank
from evals.metrics.run import Run

__all__ = ["METRICS", "Run", "dcg", "evaluate", "mean_scores", "ndcg", "recall", "reciprocal_rank"]
