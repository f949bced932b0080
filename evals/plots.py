"""PNG plots for eval reports, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from evals.records import EvalReport
from tools.atomic_write import atomic_path
from tools.errors import BadInput


def _label(report: EvalReport) -> str:
    return report.strategy if not report.model else f"{report.strategy}\n{report.model}"


def plot_metric_by_strategy(reports: Sequence[EvalReport], metric: str, path: Path) -> Path:
    """One bar per run: the mean of ``metric``, value printed on the bar."""
    if not reports:
        raise BadInput("no reports to plot")
    ordered = sorted(reports, key=lambda r: r.means.get(metric, 0.0), reverse=True)
    labels = [_label(r) for r in ordered]
    values = [r.means.get(metric, 0.0) for r in ordered]
    with _figure(path, (max(4.0, 1.1 * len(ordered) + 1.5), 3.6)) as axes:
        bars = axes.bar(range(len(values)), values, color="#4477aa")
        axes.bar_label(bars, labels=[f"{v:.3f}" for v in values], fontsize=8)
        axes.set_xticks(range(len(labels)), labels, fontsize=8)
        axes.set_ylabel(metric)
        axes.set_ylim(0, max(1e-9, max(values)) * 1.15)
        first = ordered[0]
        axes.set_title(f"{metric} by strategy · {first.dataset} {first.split}", fontsize=10)
    return path


def plot_per_query_scatter(a: EvalReport, b: EvalReport, metric: str, path: Path) -> Path:
    """Each shared query as a point (A's value, B's value); above the diagonal B did better."""
    values_a, values_b = a.values(metric), b.values(metric)
    shared = sorted(set(values_a) & set(values_b))
    if not shared:
        raise BadInput("the two runs share no query")
    xs = [values_a[q] for q in shared]
    ys = [values_b[q] for q in shared]
    with _figure(path, (4.6, 4.6)) as axes:
        axes.plot([0, 1], [0, 1], color="#999999", linewidth=1, zorder=1)
        axes.scatter(xs, ys, s=14, alpha=0.6, color="#cc6677", zorder=2)
        axes.set_xlim(-0.02, 1.02)
        axes.set_ylim(-0.02, 1.02)
        axes.set_xlabel(f"{metric} · {a.name}", fontsize=8)
        axes.set_ylabel(f"{metric} · {b.name}", fontsize=8)
        axes.set_title(f"per query, {len(shared)} queries", fontsize=10)
        axes.set_aspect("equal")
    return path


@contextmanager
def _figure(path: Path, size: tuple[float, float]) -> Iterator[Axes]:
    """Axes to draw on; the figure is saved to ``path`` (atomically, PNG) when the block ends
    and closed either way, so a failed plot leaves neither a figure in memory nor half a file."""
    figure, axes = plt.subplots(figsize=size)
    try:
        yield axes
        figure.tight_layout()
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=120, format="png")
    finally:
        plt.close(figure)
