"""Raw-query lexical search on real Chorus data: the project's NDCG@10, cross-checked with ranx."""

from __future__ import annotations

import pytest
from ranx import Qrels as RanxQrels
from ranx import Run as RanxRun
from ranx import evaluate as ranx_evaluate

from tools.catalog.datasets import load_dataset
from tools.metrics import Run, evaluate, mean_scores
from tools.search.request import SearchRequest
from tools.search.tantivy_backend import TantivyIndex
from tools.settings.config import Settings
from tools.stores import open_lexical

#: The issue's bar for the embedded backend on raw queries (plain BM25 measured at 0.70).
NDCG10_FLOOR = 0.69


@pytest.fixture(scope="module")
def chorus_run(chorus_settings: Settings):
    """Every judged query on the session's tantivy index of the whole catalog (the same
    ``TantivyIndex.index`` of ``load_dataset("chorus").products()``, built once)."""
    dataset = load_dataset("chorus", chorus_settings)
    index = open_lexical(chorus_settings, "chorus")
    assert isinstance(index, TantivyIndex) and index.count() == 19_406
    judgments = dataset.judgments()
    queries = judgments.with_positive()
    run = Run("raw")
    for query in queries:
        results = index.search(SearchRequest(query.text, size=100))
        run.add(query.id, [(hit.product_id, hit.score) for hit in results.hits])
    qrels = {q.id: dict(judgments.gains(q.id)) for q in queries}
    return run, qrels


def test_raw_query_ndcg_on_chorus_meets_the_bar(chorus_run) -> None:
    run, qrels = chorus_run
    assert len(qrels) == 116
    scores = mean_scores(evaluate(run, qrels))
    assert scores["ndcg@10"] >= NDCG10_FLOOR, scores


def test_project_metrics_match_ranx_on_the_same_run(chorus_run) -> None:
    run, qrels = chorus_run
    ours = mean_scores(evaluate(run, qrels))
    theirs = ranx_evaluate(
        RanxQrels(qrels), RanxRun(run.as_dict()), ["ndcg@10", "ndcg@100", "recall@10", "mrr"]
    )
    for name, value in theirs.items():
        assert ours[name] == pytest.approx(float(value), abs=1e-9), name
