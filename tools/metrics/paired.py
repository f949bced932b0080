"""Paired comparison of two systems over the same queries: the one place its statistics live.

For one metric: the mean of each side, the delta (B - A), wins / ties / losses for B (a tie is
an absolute difference under ``TIE_TOLERANCE``), a two-sided Wilcoxon signed-rank test (zero
differences dropped, the usual IR choice), a paired t-test, and a paired bootstrap confidence
interval of the mean delta (percentile method; queries resampled with replacement). Two sides
that agree on every query get p = 1 and the interval [0, 0] instead of the NaNs the tests
would return. ``evals.compare`` reads two eval runs into it; ``rl.headroom`` compares action
choices against the raw search with it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats

from tools.errors import BadInput

TIE_TOLERANCE = 1e-9
RESAMPLES = 10_000
CONFIDENCE = 0.95


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
