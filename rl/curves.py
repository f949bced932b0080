"""Learning curves of a training run, drawn from TRL's log history into the run directory.

A run is judged by whether its reward and its gain over the raw search rise step by step, not
only by the final eval, so every run writes ``curves.png`` beside ``metrics.json``. One panel
per measure the history holds (TRL's names: GRPO logs ``reward`` and the reward function's own
``rewards/gain@10`` and ``rewards/ndcg@10``; DPO ``rewards/margins``; an evaluation during
training ``eval_ndcg@10``), against the optimiser step; measures the run did not log are left
out, and a history with none of them draws nothing. matplotlib's Agg backend: no display.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

CURVES_FILE = "curves.png"

#: Panel title -> the log-history keys that hold it, first found wins.
CURVES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("reward", ("reward", "rewards/search_reward/mean")),
    ("gain over raw (NDCG@10)", ("rewards/gain@10",)),
    ("NDCG@10 of the written search", ("rewards/ndcg@10",)),
    ("dev NDCG@10", ("eval_ndcg@10", "dev_ndcg@10")),
    ("valid calls", ("rewards/valid_rate",)),
    ("DPO reward margin", ("rewards/margins",)),
    ("loss", ("loss",)),
)

Point = tuple[float, float]


def curve_series(log_history: Sequence[Mapping[str, Any]]) -> dict[str, list[Point]]:
    """Panel title -> ``(step, value)`` points, in step order, for every measure present."""
    series: dict[str, list[Point]] = {}
    for title, keys in CURVES:
        key = next((k for k in keys if any(_number(e.get(k)) for e in log_history)), None)
        if key is None:
            continue
        points = [
            (float(entry.get("step", index)), float(entry[key]))
            for index, entry in enumerate(log_history)
            if _number(entry.get(key))
        ]
        series[title] = sorted(points)
    return series


def plot_learning_curves(
    log_history: Sequence[Mapping[str, Any]], run_dir: Path, *, title: str = ""
) -> Path | None:
    """Write ``run_dir/curves.png``; None when the history holds no known measure."""
    series = curve_series(log_history)
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(series), 1, figsize=(6.0, 2.0 * len(series) + 0.6), sharex=True, squeeze=False
    )
    try:
        for axis, (name, points) in zip(axes[:, 0], series.items(), strict=True):
            steps = [step for step, _ in points]
            values = [value for _, value in points]
            axis.plot(steps, values, marker="o", markersize=3, color="#4477aa")
            if name.startswith("gain"):
                axis.axhline(0.0, color="#999999", linewidth=0.8, linestyle="--")
            axis.set_ylabel(name, fontsize=8)
            axis.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("optimiser step")
        if title:
            figure.suptitle(title, fontsize=10)
        figure.tight_layout()
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / CURVES_FILE
        figure.savefig(path, dpi=110)
    finally:
        plt.close(figure)
    return path


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value
