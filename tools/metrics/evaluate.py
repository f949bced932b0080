"""Score a run against judgments with every metric the reports show, per query and on average."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from statistics import fmean

from tools.metrics.ndcg import ndcg
from tools.metrics.recall import recall
from tools.metrics.reciprocal_rank import reciprocal_rank
from tools.metrics.run import Run

Metric = Callable[[Sequence[str], Mapping[str, float]], float]

METRICS: dict[str, Metric] = {
    "ndcg@10": lambda r, j: ndcg(r, j, 10),
    "ndcg@100": lambda r, j: ndcg(r, j, 100),
    "recall@10": lambda r, j: recall(r, j, 10),
    "recall@100": lambda r, j: recall(r, j, 100),
    "mrr": lambda r, j: reciprocal_rank(r, j),
}


def evaluate(
    run: Run, qrels: Mapping[str, Mapping[str, float]], metrics: Sequence[str] = tuple(METRICS)
) -> dict[str, dict[str, float]]:
    """``{query_id: {metric: value}}`` over every judged query; a query the run missed scores 0."""
    return {
        qid: {name: METRICS[name](run.ids(qid), judged) for name in metrics}
        for qid, judged in qrels.items()
    }


def mean_scores(per_query: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    if not per_query:
        return {}
    names = next(iter(per_query.values())).keys()
    return {name: fmean(scores[name] for scores in per_query.values()) for name in names}
