"""The project's metrics agree with ranx on the same runs, and TREC run files round-trip."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from ranx import Qrels as RanxQrels
from ranx import Run as RanxRun
from ranx import evaluate as ranx_evaluate

from tools.metrics import Run, evaluate, mean_scores, ndcg, recall, reciprocal_rank


def test_ndcg_by_hand() -> None:
    judged = {"a": 3, "b": 2, "c": 0}
    # DCG = 2/log2(2) + 3/log2(3); IDCG = 3 + 2/log2(3)
    expected = (2 + 3 / 1.584962500721156) / (3 + 2 / 1.584962500721156)
    assert ndcg(["b", "a", "x"], judged, 10) == pytest.approx(expected)
    assert ndcg(["a", "b"], judged, 10) == 1.0
    assert ndcg(["x", "y"], judged, 10) == 0.0
    assert ndcg(["a"], {"a": 0}, 10) == 0.0


def test_duplicate_ids_are_scored_once() -> None:
    assert ndcg(["a", "a", "a"], {"a": 1, "b": 1}, 10) < 1.0


def test_recall_and_reciprocal_rank_by_hand() -> None:
    judged = {"a": 1, "b": 2, "c": 0, "d": 1}
    assert recall(["c", "a", "x", "b"], judged, 2) == pytest.approx(1 / 3)
    assert recall(["c", "a", "x", "b"], judged, 10) == pytest.approx(2 / 3)
    assert reciprocal_rank(["c", "x", "b"], judged) == pytest.approx(1 / 3)
    assert reciprocal_rank(["c", "x"], judged) == 0.0


def random_case(seed: int) -> tuple[dict[str, dict[str, int]], Run]:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(60)]
    qrels, run = {}, Run("random")
    for q in range(25):
        judged = rng.sample(docs, rng.randint(1, 20))
        qrels[f"q{q}"] = {d: rng.randint(0, 3) for d in judged}
        qrels[f"q{q}"][judged[0]] = rng.randint(1, 3)  # at least one relevant
        ranking = rng.sample(docs, rng.randint(0, 40))
        run.add(f"q{q}", [(d, 100.0 - i) for i, d in enumerate(ranking)])
    return qrels, run


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_ranx_on_random_runs(seed: int) -> None:
    qrels, run = random_case(seed)
    ours = mean_scores(evaluate(run, qrels))
    theirs = ranx_evaluate(
        RanxQrels(qrels),
        RanxRun(run.as_dict()),
        ["ndcg@10", "ndcg@100", "recall@10", "recall@100", "mrr"],
    )
    for name, value in theirs.items():
        assert ours[name] == pytest.approx(float(value), abs=1e-9), name


def test_trec_run_files_round_trip(tmp_path: Path) -> None:
    _, run = random_case(7)
    path = tmp_path / "runs" / "random.trec"
    run.write_trec(path)
    back = Run.read_trec(path)
    assert back.name == "random"
    assert {q: back.ids(q) for q in run.rankings} == {q: run.ids(q) for q in run.rankings}


def test_malformed_trec_line_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.trec"
    path.write_text("q1 Q0 d1 1 2.0 run\nq1 Q0 d2\n")
    with pytest.raises(ValueError, match=r"bad.trec:2"):
        Run.read_trec(path)
