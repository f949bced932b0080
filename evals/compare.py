"""Is run B better than run A? Paired tests over the queries both runs answered.

For each metric: the mean of each run, the delta (B - A), wins / ties / losses for B
(a tie is an absolute difference under ``TIE_TOLERANCE``), a two-sided Wilcoxon signed-rank
test (zero differences dropped, the usual IR choice), a paired t-test, and a paired
bootstrap confidence interval of the mean delta (percentile method; queries resampled with
replacement). Two runs that agree on every query get p = 1 and the interval [0, 0] instead
of the NaNs the tests would return.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table
from scipy import stats

from evals.plots import plot_per_query_scatter
from evals.records import METRIC_NAMES, EvalReport, resolve_report
from evals.report import markdown_table, number, terminal_table
from tools.atomic_write import write_text
from tools.errors import BadInput

TIE_TOLERANCE = 1e-9
RESAMPLES = 10_000
CONFIDENCE = 0.95
DEFAULT_METRICS = METRIC_NAMES


@dataclass(frozen=True, slots=True)
class MetricComparison:
    metric: str
    queries: int
    mean_a: float
    mean_b: float
    delta: float
    wins: int
    ties: int
    losses: int
    wilcoxon_p: float | None
    ttest_p: float | None
    ci_low: float
    ci_high: float
    note: str = ""


@dataclass(frozen=True, slots=True)
class Comparison:
    a: str
    b: str
    rows: list[MetricComparison]
    shared_queries: int
    only_a: int
    only_b: int
    confidence: float = CONFIDENCE
    resamples: int = RESAMPLES
    seed: int = 0
    warnings: list[str] = field(default_factory=list)

    def row(self, metric: str) -> MetricComparison:
        for row in self.rows:
            if row.metric == metric:
                return row
        raise KeyError(metric)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_values(
    metric: str,
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> MetricComparison:
    """Paired statistics over the query ids both mappings hold."""
    shared = sorted(set(a) & set(b))
    if not shared:
        raise BadInput("the two runs share no query")
    left = np.array([a[q] for q in shared], dtype=float)
    right = np.array([b[q] for q in shared], dtype=float)
    diffs = right - left
    wins = int((diffs > TIE_TOLERANCE).sum())
    losses = int((diffs < -TIE_TOLERANCE).sum())
    base = {
        "metric": metric,
        "queries": len(shared),
        "mean_a": float(left.mean()),
        "mean_b": float(right.mean()),
        "delta": float(diffs.mean()),
        "wins": wins,
        "ties": len(shared) - wins - losses,
        "losses": losses,
    }
    if wins == 0 and losses == 0:
        return MetricComparison(
            **base,
            wilcoxon_p=1.0,
            ttest_p=1.0,
            ci_low=0.0,
            ci_high=0.0,
            note="identical on every query",
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        wilcoxon_p = _finite(stats.wilcoxon(right, left, zero_method="wilcox").pvalue)
        ttest_p = _finite(stats.ttest_rel(right, left).pvalue)
    low, high = bootstrap_interval(diffs, resamples=resamples, confidence=confidence, seed=seed)
    note = "" if len(shared) >= 10 else "fewer than 10 queries: tests are weak"
    return MetricComparison(
        **base, wilcoxon_p=wilcoxon_p, ttest_p=ttest_p, ci_low=low, ci_high=high, note=note
    )


def bootstrap_interval(
    diffs: np.ndarray, *, resamples: int = RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean paired difference."""
    if len(diffs) < 2 or np.allclose(diffs, diffs[0]):
        return float(diffs.mean()), float(diffs.mean())
    result = stats.bootstrap(
        (diffs,),
        np.mean,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def compare_reports(
    a: EvalReport,
    b: EvalReport,
    metrics: Sequence[str] = DEFAULT_METRICS,
    *,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> Comparison:
    """Every metric of two reports, paired on the queries both answered."""
    shared = set(a.per_query) & set(b.per_query)
    notes: list[str] = []
    if (a.dataset, a.split) != (b.dataset, b.split):
        notes.append(f"different splits: {a.dataset}/{a.split} vs {b.dataset}/{b.split}")
    only_a, only_b = len(set(a.per_query) - shared), len(set(b.per_query) - shared)
    if only_a or only_b:
        notes.append(f"{len(shared)} shared queries ({only_a} only in A, {only_b} only in B)")
    rows = [
        compare_values(
            metric,
            a.values(metric),
            b.values(metric),
            resamples=resamples,
            confidence=confidence,
            seed=seed,
        )
        for metric in metrics
    ]
    return Comparison(
        a=a.name,
        b=b.name,
        rows=rows,
        shared_queries=len(shared),
        only_a=only_a,
        only_b=only_b,
        confidence=confidence,
        resamples=resamples,
        seed=seed,
        warnings=notes,
    )


def compare_runs(
    ref_a: str | Path,
    ref_b: str | Path,
    *,
    runs_root: Path = Path("runs"),
    metrics: Sequence[str] = DEFAULT_METRICS,
    scatter_metric: str = "ndcg@10",
    seed: int = 0,
) -> tuple[Comparison, Path]:
    """``shopagent eval compare A B``: the comparison, written to ``compare-A-vs-B/``."""
    a, b = resolve_report(ref_a, runs_root), resolve_report(ref_b, runs_root)
    comparison = compare_reports(a, b, metrics, seed=seed)
    out = runs_root / f"compare-{a.name}-vs-{b.name}"
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "compare.json", json.dumps(comparison.to_dict(), indent=2))
    plot = out / f"scatter-{scatter_metric}.png"
    plot_per_query_scatter(a, b, scatter_metric, plot)
    write_text(out / "compare.md", comparison_markdown(comparison, plot=plot.name))
    return comparison, out


# -- rendering -------------------------------------------------------------------------------


def _p_value(value: float | None) -> str:
    if value is None:
        return "—"
    return "<0.0001" if value < 1e-4 else f"{value:.4f}"


COMPARISON_HEADERS = (
    "metric",
    "A",
    "B",
    "Δ (B−A)",
    "CI",
    "win/tie/loss",
    "Wilcoxon p",
    "t-test p",
)


def _comparison_rows(comparison: Comparison) -> list[list[str]]:
    return [
        [
            row.metric,
            number(row.mean_a),
            number(row.mean_b),
            f"{row.delta:+.4f}",
            f"[{row.ci_low:+.4f}, {row.ci_high:+.4f}]",
            f"{row.wins}/{row.ties}/{row.losses}",
            _p_value(row.wilcoxon_p),
            _p_value(row.ttest_p),
        ]
        for row in comparison.rows
    ]


def comparison_table(comparison: Comparison) -> Table:
    title = f"A = {comparison.a}  ·  B = {comparison.b}"
    return terminal_table(title, COMPARISON_HEADERS, _comparison_rows(comparison))


def comparison_markdown(comparison: Comparison, plot: str | None = None) -> str:
    lines = [
        f"# Compare · {comparison.b} vs {comparison.a}",
        "",
        f"- A = `{comparison.a}`, B = `{comparison.b}`; {comparison.shared_queries} shared queries",
        f"- wins count queries where B beats A; CI: {comparison.confidence:.0%} paired bootstrap "
        f"of the mean delta ({comparison.resamples} resamples, seed {comparison.seed}); "
        "Wilcoxon signed-rank and paired t-test, two-sided",
        *(f"- note: {w}" for w in comparison.warnings),
        *(f"- {row.metric}: {row.note}" for row in comparison.rows if row.note),
        "",
        markdown_table(COMPARISON_HEADERS, _comparison_rows(comparison)),
        "",
    ]
    if plot:
        lines += [f"![per-query scatter]({plot})", ""]
    return "\n".join(lines)
