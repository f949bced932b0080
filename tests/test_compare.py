"""Paired comparison of two runs: deltas, win/tie/loss, tests, intervals, identical runs."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from evals.compare import compare_reports, compare_runs, compare_values
from evals.records import METRIC_NAMES, EvalReport
from tools.errors import NotFound


def make_report(name: str, values: dict[str, float], split: str = "all") -> EvalReport:
    per_query = {
        qid: {"text": qid, **dict.fromkeys(METRIC_NAMES, value)} for qid, value in values.items()
    }
    return EvalReport(
        name=name,
        dataset="chorus",
        split=split,
        strategy=name,
        model=None,
        depth=100,
        means={m: float(np.mean(list(values.values()))) for m in METRIC_NAMES},
        per_query=per_query,
        tool_calls=None,
        latency_ms={"p50": 1.0, "p95": 2.0, "mean": 1.2},
        wall_s=0.1,
        relevance="graded",
    )


def test_counts_and_delta_by_hand() -> None:
    a = {"q1": 0.5, "q2": 0.2, "q3": 0.9, "q4": 0.0}
    b = {"q1": 0.7, "q2": 0.2, "q3": 0.6, "q4": 0.1}
    row = compare_values("ndcg@10", a, b, resamples=2000)
    assert (row.wins, row.ties, row.losses) == (2, 1, 1)
    assert row.delta == pytest.approx((0.2 + 0 - 0.3 + 0.1) / 4)
    assert row.mean_a == pytest.approx(0.4) and row.mean_b == pytest.approx(0.4)
    assert row.note  # four queries: flagged as weak evidence


def test_identical_runs_are_a_clean_tie() -> None:
    values = {f"q{i}": i / 20 for i in range(20)}
    row = compare_values("ndcg@10", values, dict(values))
    assert (row.wins, row.ties, row.losses) == (0, 20, 0)
    assert row.delta == 0.0
    assert row.wilcoxon_p == 1.0 and row.ttest_p == 1.0
    assert (row.ci_low, row.ci_high) == (0.0, 0.0)
    assert "identical" in row.note


def test_a_consistent_improvement_is_significant_and_matches_scipy() -> None:
    rng = random.Random(3)
    a = {f"q{i}": rng.random() * 0.5 for i in range(60)}
    b = {q: v + 0.05 + rng.random() * 0.1 for q, v in a.items()}
    row = compare_values("ndcg@10", a, b, seed=1)
    left, right = np.array(list(a.values())), np.array([b[q] for q in a])
    assert row.wins == 60 and row.losses == 0
    assert row.wilcoxon_p == pytest.approx(stats.wilcoxon(right, left).pvalue)
    assert row.ttest_p == pytest.approx(stats.ttest_rel(right, left).pvalue)
    assert row.wilcoxon_p < 0.001
    assert 0.05 < row.ci_low < row.delta < row.ci_high < 0.15


def test_bootstrap_interval_is_seeded() -> None:
    rng = random.Random(5)
    a = {f"q{i}": rng.random() for i in range(40)}
    b = {f"q{i}": rng.random() for i in range(40)}
    first = compare_values("mrr", a, b, seed=7)
    again = compare_values("mrr", a, b, seed=7)
    other = compare_values("mrr", a, b, seed=8)
    assert (first.ci_low, first.ci_high) == (again.ci_low, again.ci_high)
    assert (first.ci_low, first.ci_high) != (other.ci_low, other.ci_high)
    assert first.ci_low < first.delta < first.ci_high


def test_reports_are_paired_on_shared_queries_only() -> None:
    a = make_report("a", {"q1": 0.1, "q2": 0.4, "q3": 0.3})
    b = make_report("b", {"q2": 0.5, "q3": 0.3, "q9": 1.0}, split="dev")
    comparison = compare_reports(a, b, ["ndcg@10", "mrr"], resamples=500)
    assert comparison.shared_queries == 2
    assert (comparison.only_a, comparison.only_b) == (1, 1)
    assert comparison.row("mrr").queries == 2
    assert comparison.row("ndcg@10").delta == pytest.approx(0.05)
    assert any("different splits" in w for w in comparison.warnings)


def test_runs_without_shared_queries_are_refused() -> None:
    with pytest.raises(ValueError, match="share no query"):
        compare_reports(make_report("a", {"q1": 1.0}), make_report("b", {"q2": 1.0}))


def test_compare_runs_writes_markdown_json_and_scatter(tmp_path: Path) -> None:
    rng = random.Random(11)
    values = {f"q{i}": rng.random() for i in range(30)}
    for name, shift in (("raw", 0.0), ("hybrid", 0.1)):
        report = make_report(name, {q: min(1.0, v + shift) for q, v in values.items()})
        report.write(tmp_path / name / "report.json")
    comparison, out = compare_runs("raw", tmp_path / "hybrid", runs_root=tmp_path)
    assert out == tmp_path / "compare-raw-vs-hybrid"
    saved = json.loads((out / "compare.json").read_text())
    assert saved["a"] == "raw" and saved["b"] == "hybrid"
    assert comparison.row("ndcg@10").delta > 0
    markdown = (out / "compare.md").read_text()
    assert "win/tie/loss" in markdown and "scatter-ndcg@10.png" in markdown
    assert (out / "scatter-ndcg@10.png").read_bytes().startswith(b"\x89PNG")


def test_an_unknown_run_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no eval report for 'nope'"):
        compare_runs("nope", "other", runs_root=tmp_path)
