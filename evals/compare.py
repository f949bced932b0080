"""Is run B better than run A? Paired tests over the queries both runs answered.

Each metric of the two reports goes through ``tools.metrics.paired.compare_values`` (means,
delta, wins / ties / losses, Wilcoxon and paired t-test, bootstrap interval); this module
reads the runs, lines up their queries and renders the comparison.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evals.plots import plot_per_query_scatter
from evals.records import METRIC_NAMES, EvalReport, resolve_report
from evals.report import MetricTable, markdown_table, number, terminal_table
from tools.atomic_write import write_text
from tools.metrics.paired import (
    CONFIDENCE,
    RESAMPLES,
    MetricComparison,
    compare_values,
)

DEFAULT_METRICS = METRIC_NAMES


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


def comparison_table(comparison: Comparison) -> MetricTable:
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
